/**
 * The part of roslib 2.x this adapter uses, typed. roslib 2.1's own type entry (dist/RosLib.d.ts) re-exports
 * './src/RosLib' without a file extension, which TypeScript's NodeNext resolution cannot follow, so the package
 * looks as if it exported nothing. These declarations mirror its dist/src/core/Ros.d.ts and Topic.d.ts.
 */
import * as roslibModule from 'roslib';
import { V4sError } from '../../errors.js';

/** roslib's `Ros`: the connection to rosbridge. Events: `connection`, `close`, `error`. */
export interface RosConnection {
  readonly isConnected: boolean;
  /** Creates the transport; resolves before the socket is open ('connection' says when it is). */
  connect(url: string): Promise<void>;
  close(): void;
  on(event: 'connection' | 'close' | 'error', listener: (event: unknown) => void): this;
  off(event: 'connection' | 'close' | 'error', listener: (event: unknown) => void): this;
}

/** Options of roslib's `Topic`. */
export interface RosTopicOptions {
  readonly ros: RosConnection;
  readonly name: string;
  readonly messageType: string;
  readonly compression?: string;
  readonly throttle_rate?: number;
  readonly queue_size?: number;
  readonly latch?: boolean;
  readonly queue_length?: number;
  readonly reconnect_on_close?: boolean;
}

/** roslib's `Topic<T>`. `publish` advertises first when needed; both go through `callOnConnection`. */
export interface RosTopic<T> {
  subscribe(callback: (message: T) => void): void;
  unsubscribe(callback?: (message: T) => void): void;
  advertise(): void;
  unadvertise(): void;
  publish(message: T): void;
  /**
   * Set by a `reconnect_on_close` topic when Ros emits `close`: it has queued its subscribe/advertise for the next
   * `connection` and ignores further `close` events until then (roslib 2.1, public in Topic.d.ts).
   */
  waitForReconnect?: boolean;
}

interface RoslibExports {
  readonly Ros: new (options: { readonly url?: string }) => RosConnection;
  readonly Topic: new <T>(options: RosTopicOptions) => RosTopic<T>;
}

const lib = roslibModule as unknown as Partial<RoslibExports>;

/** roslib's constructors, checked at load. */
export function roslib(): RoslibExports {
  const { Ros, Topic } = lib;
  if (typeof Ros !== 'function' || typeof Topic !== 'function') {
    throw new V4sError('E_CONFIG', 'the roslib package (2.x) does not export Ros and Topic; install roslib@2 (npm install roslib)');
  }
  return { Ros, Topic };
}
