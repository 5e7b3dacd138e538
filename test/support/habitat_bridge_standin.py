#!/usr/bin/env python3
"""Runs the REAL Habitat bridge (src/sim-adapters/habitat/bridge.py, its command line included) on the TEST
STAND-IN of habitat-sim (habitat_sim_standin.py in this folder), which replaces habitat-sim because habitat-sim
cannot run here. Same arguments as bridge.py; prints "v4s habitat bridge listening on ws://..." when ready.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "src", "sim-adapters", "habitat"))

import bridge  # noqa: E402
import habitat_sim_standin as standin  # noqa: E402


def factory(args, scene):
    config = standin.make_configuration(scene, args.width, args.height, args.hfov, semantic=args.oracle)
    sim = standin.Simulator(config)

    def reconfigure(new_scene):
        config.sim_cfg.scene_id = new_scene
        sim.reconfigure(config)

    return sim, reconfigure


if __name__ == "__main__":
    sys.exit(bridge.main(sys.argv[1:], simulator_factory=factory, hs=standin))
