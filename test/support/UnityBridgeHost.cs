// TEST HOST, not Unity: runs the real V4sAgentBridge.cs outside Unity, on the UnityEngine STUBS
// (src/sim-adapters/unity/stubs/UnityEngine.cs), under Debian's mono. It builds a tiny "scene" (an agent with a
// CharacterController and a child camera, a goal), calls the MonoBehaviour messages Unity would call (Awake,
// Start, then Update every 2 ms) and exits when the connection to the agent has ended.
//
//   mcs -out:host.exe test/support/UnityBridgeHost.cs src/sim-adapters/unity/V4sAgentBridge.cs src/sim-adapters/unity/stubs/UnityEngine.cs
//   mono host.exe ws://127.0.0.1:8766 [token]
using System;
using System.Reflection;
using System.Threading;
using UnityEngine;
using V4s;

public static class UnityBridgeHost
{
    static void Call(object target, string message)
    {
        MethodInfo m = target.GetType().GetMethod(message, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public);
        if (m != null) m.Invoke(target, null);
    }

    public static int Main(string[] args)
    {
        var agent = new GameObject("agent");
        agent.AddComponent<CharacterController>();
        agent.transform.SetPositionAndRotation(new Vector3(1f, 0f, 3f), Quaternion.identity);
        var cameraObject = new GameObject("camera");
        cameraObject.transform.parent = agent.transform;
        var camera = cameraObject.AddComponent<Camera>();
        var goal = new GameObject("goal");
        goal.transform.position = new Vector3(0f, 0f, 2f);

        V4sAgentBridge bridge = agent.AddComponent<V4sAgentBridge>();
        bridge.agentUrl = args[0];
        bridge.token = args.Length > 1 ? args[1] : "";
        bridge.agentCamera = camera;
        bridge.width = 8;
        bridge.height = 6;
        bridge.jpegFirst = false; // the stubs cannot encode JPEG
        bridge.reconnectSeconds = 0f;
        bridge.goalTarget = goal.transform;
        bridge.goalCategory = "chair";
        bridge.groundSnap = 0f;

        Call(bridge, "Awake");
        Call(bridge, "Start");
        DateTime deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            Call(bridge, "Update");
            if (bridge.Connection != null && bridge.Connection.IsFinished) break;
            Thread.Sleep(2);
        }
        Call(bridge, "Update");
        Call(bridge, "OnDestroy");
        return bridge.Connection != null && bridge.Connection.IsFinished ? 0 : 1;
    }
}
