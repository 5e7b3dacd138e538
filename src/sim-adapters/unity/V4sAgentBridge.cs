// V4sAgentBridge.cs: a Unity scene as a v4s-nav simulator (wire protocol v4s.sim.v1, docs/protocol.md).
//
// The agent listens (`listenForSimulator` in v4s-nav) and this component dials it: it sends `hello` first
// (with the token, when the agent requires one), waits for `welcome`, then answers `reset` and `step`
// with one binary observation each: a camera frame rendered through a RenderTexture and encoded as JPEG or
// PNG, the agent's pose, `collided`, and episode measures. Actions move a CharacterController, so walls and
// furniture block the agent and `collided` is reported. Poses are sent in Unity's own frame (left-handed,
// +Y up, +Z forward) and declared with `"poseFrame": "unity"`; the TypeScript side converts them to
// Habitat's frame.
//
// No third-party package: System.Net.WebSockets.ClientWebSocket on a background task, and a queue that
// hands every message to the main thread (Update), where all Unity API calls happen.
//
// Setup: see README.md next to this file. Drop this one file into Assets/.

using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using UnityEngine;
using UnityEngine.AI;

namespace V4s
{
    /// <summary>Serves this scene to a v4s-nav agent over v4s.sim.v1 (the simulator side; it dials the agent).</summary>
    [RequireComponent(typeof(CharacterController))]
    public class V4sAgentBridge : MonoBehaviour
    {
        [Header("Connection")]
        [Tooltip("The listening agent: listenForSimulator({ port: 8766 }) on the agent's machine.")]
        public string agentUrl = "ws://127.0.0.1:8766";
        [Tooltip("Shared token, when the agent listens with one (required beyond loopback). Sent in hello.")]
        public string token = "";
        [Tooltip("Dial again after this many seconds when the agent is not there or the connection drops; 0: do not.")]
        public float reconnectSeconds = 2f;

        [Header("Camera")]
        [Tooltip("The agent's camera, a child of this object (look_up/look_down tilt it).")]
        public Camera agentCamera;
        public int width = 640;
        public int height = 480;
        [Tooltip("Offer JPEG first (smaller); the agent may ask for PNG (lossless) in welcome.")]
        public bool jpegFirst = true;
        [Range(1, 100)] public int jpegQuality = 90;

        [Header("Actions (the amounts are advertised in hello)")]
        public float forwardStep = 0.25f;
        public float turnAngle = 30f;
        public float tiltAngle = 30f;
        public bool lookActions = true;
        public float maxTilt = 60f;
        [Tooltip("After each move, a downward move of this length keeps the agent on the floor; 0: off.")]
        public float groundSnap = 0.5f;

        [Header("Episodes")]
        [Tooltip("Start poses; reset picks startPoints[seed % n], or the one named like the episode id. Empty: the pose at Start.")]
        public Transform[] startPoints = new Transform[0];
        [Tooltip("PointNav goal, and where distanceToGoal is measured to.")]
        public Transform goalTarget;
        [Tooltip("ObjectNav target category (e.g. chair); empty: no ObjectNav.")]
        public string goalCategory = "";
        public float successDistance = 1.0f;
        public int maxSteps = 500;
        [Tooltip("Measure distances along the baked NavMesh (geodesic) instead of straight lines.")]
        public bool useNavMesh = true;

        // --- state (main thread) ---------------------------------------------------------------------------
        CharacterController controller;
        RenderTexture renderTexture;
        Texture2D readback;
        Vector3 initialPosition;
        Quaternion initialRotation;
        float tilt;
        bool episodeOpen;
        int stepIndex;
        float pathLength;
        float shortestPathLength = -1f;
        Vector3 lastPosition;
        string currentTask = "pointnav";
        string currentEpisode = "";

        V4sConnection connection;
        CancellationTokenSource cancel;

        /// <summary>The link to the agent (null before Start); `Connection.IsConnected` for a status display.</summary>
        public V4sConnection Connection { get { return connection; } }

        void Awake()
        {
            controller = GetComponent<CharacterController>();
            initialPosition = transform.position;
            initialRotation = transform.rotation;
        }

        void Start()
        {
            if (agentCamera == null)
            {
                Debug.LogError("V4sAgentBridge: assign agentCamera (a camera that is a child of the agent)");
                enabled = false;
                return;
            }
            renderTexture = new RenderTexture(width, height, 24);
            readback = new Texture2D(width, height, TextureFormat.RGB24, false);
            cancel = new CancellationTokenSource();
            connection = new V4sConnection(agentUrl, token, reconnectSeconds, HelloCapabilities(), Encodings());
            connection.Log = m => Debug.Log("V4sAgentBridge: " + m);
            Task.Run(() => connection.RunAsync(cancel.Token));
        }

        void Update()
        {
            if (connection == null) return;
            // Every message from the agent is handled here, on the main thread, in arrival order.
            V4sConnection.Incoming msg;
            while (connection.Inbox.TryDequeue(out msg))
            {
                if (msg.Kind == V4sConnection.IncomingKind.Disconnected)
                {
                    episodeOpen = false; // the agent is gone: end the episode
                    continue;
                }
                Dictionary<string, object> request = msg.Request;
                string op = (string)request["op"];
                long id = (long)request["id"];
                try
                {
                    byte[] reply = Serve(op, id, request);
                    connection.SendBinary(msg.Generation, id, reply);
                }
                catch (V4sException e)
                {
                    connection.SendError(msg.Generation, e.Code, e.Message, id);
                }
                catch (Exception e)
                {
                    Debug.LogException(e);
                    connection.SendError(msg.Generation, "E_SIMULATOR", op + " (id " + id + ") failed in the Unity scene: " + e.Message, id);
                }
            }
        }

        void OnDestroy()
        {
            if (cancel != null) cancel.Cancel();
            if (connection != null) connection.Close();
            if (renderTexture != null) renderTexture.Release();
        }

        // --- capabilities ----------------------------------------------------------------------------------

        List<string> Encodings()
        {
            return jpegFirst ? new List<string> { "jpeg", "png" } : new List<string> { "png", "jpeg" };
        }

        /// <summary>Horizontal field of view in degrees, from the camera's vertical one and the frame's aspect.</summary>
        public float HorizontalFov()
        {
            double v = agentCamera.fieldOfView * Math.PI / 180.0;
            return (float)(2.0 * Math.Atan(Math.Tan(v / 2.0) * width / (double)height) * 180.0 / Math.PI);
        }

        Dictionary<string, object> HelloCapabilities()
        {
            var actions = new Dictionary<string, object>();
            actions["move_forward"] = Action("move", forwardStep);
            actions["turn_left"] = Action("turn", turnAngle);
            actions["turn_right"] = Action("turn", turnAngle);
            if (lookActions)
            {
                actions["look_up"] = Action("look", tiltAngle);
                actions["look_down"] = Action("look", tiltAngle);
            }
            actions["stop"] = Action("stop", 0f);
            var tasks = new List<object>();
            if (!string.IsNullOrEmpty(goalCategory)) tasks.Add("objectnav");
            if (goalTarget != null) tasks.Add("pointnav");
            var caps = new Dictionary<string, object>();
            caps["actions"] = actions;
            caps["camera"] = new Dictionary<string, object> { { "width", width }, { "height", height }, { "hfov", (double)HorizontalFov() } };
            caps["mode"] = "lockstep";
            caps["ops"] = new List<object>();
            caps["tasks"] = tasks;
            caps["name"] = "unity";
            caps["poseFrame"] = "unity"; // poses are Unity's (left-handed, +Z forward); the agent converts them
            return caps;
        }

        static Dictionary<string, object> Action(string kind, float amount)
        {
            return new Dictionary<string, object> { { "kind", kind }, { "amount", (double)amount } };
        }

        // --- requests --------------------------------------------------------------------------------------

        byte[] Serve(string op, long id, Dictionary<string, object> request)
        {
            string where = op + " (id " + id + ")";
            if (op == "reset") return Reset(id, request, where);
            if (op == "step") return Step(id, request, where);
            throw new V4sException("E_ORACLE_DISABLED", where + ": the Unity bridge does not serve the oracle op");
        }

        byte[] Reset(long id, Dictionary<string, object> request, string where)
        {
            object taskObj;
            bool asked = request.TryGetValue("task", out taskObj);
            string task = asked ? (string)taskObj : (!string.IsNullOrEmpty(goalCategory) ? "objectnav" : "pointnav");
            // Without a goal configured, a reset that names no task is free exploration (a goal without a position).
            if (asked && task == "objectnav" && string.IsNullOrEmpty(goalCategory))
                throw new V4sException("E_PROTOCOL_FIELD", where + ": task \"objectnav\" is not served (set goalCategory)");
            if (asked && task == "pointnav" && goalTarget == null)
                throw new V4sException("E_PROTOCOL_FIELD", where + ": task \"pointnav\" is not served (set goalTarget)");
            if (task == "imagenav")
                throw new V4sException("E_PROTOCOL_FIELD", where + ": task \"imagenav\" is not served by the Unity bridge");

            Vector3 position = initialPosition;
            Quaternion rotation = initialRotation;
            object seedObj, episodeObj;
            string episode = request.TryGetValue("episode", out episodeObj) ? (string)episodeObj : null;
            long seed = request.TryGetValue("seed", out seedObj) ? (long)seedObj : 0;
            if (episode != null)
            {
                Transform found = null;
                foreach (Transform t in startPoints) if (t != null && t.name == episode) found = t;
                if (found == null) throw new V4sException("E_CONFIG", where + ": unknown episode id \"" + episode + "\" (start point names are the episode ids)");
                position = found.position;
                rotation = found.rotation;
            }
            else if (startPoints.Length > 0)
            {
                Transform t = startPoints[(int)(seed % startPoints.Length)];
                position = t.position;
                rotation = t.rotation;
                episode = t.name;
            }
            currentEpisode = episode ?? "unity:" + seed;
            currentTask = task;

            // A CharacterController overrides transform changes while enabled.
            controller.enabled = false;
            transform.SetPositionAndRotation(position, rotation);
            controller.enabled = true;
            SetTilt(0f);
            stepIndex = 0;
            pathLength = 0f;
            lastPosition = transform.position;
            episodeOpen = true;
            shortestPathLength = DistanceToGoal();

            var goal = new Dictionary<string, object> { { "task", task } };
            if (task == "objectnav") goal["category"] = goalCategory;
            if (task == "pointnav" && goalTarget != null) goal["position"] = Vec(goalTarget.position); // Unity frame, converted by the agent
            return Observation(id, false, false, false, Info(false), goal);
        }

        byte[] Step(long id, Dictionary<string, object> request, string where)
        {
            var action = (Dictionary<string, object>)request["action"];
            string name = (string)action["name"];
            object amountObj;
            bool hasAmount = action.TryGetValue("amount", out amountObj);
            float amount = hasAmount ? (float)(double)amountObj : 0f;
            bool known = name == "move_forward" || name == "turn_left" || name == "turn_right" || name == "stop"
                || (lookActions && (name == "look_up" || name == "look_down"));
            if (!known) throw new V4sException("E_UNKNOWN_ACTION", where + ": unknown action \"" + name + "\"");
            if (!episodeOpen) throw new V4sException("E_NO_EPISODE", where + ": no episode is running; send reset first");

            bool collided = false;
            bool terminated = false;
            switch (name)
            {
                case "move_forward":
                    collided = MoveForward(hasAmount ? amount : forwardStep);
                    break;
                case "turn_left": // Unity is left-handed: a positive yaw turns right
                    transform.Rotate(0f, -(hasAmount ? amount : turnAngle), 0f);
                    break;
                case "turn_right":
                    transform.Rotate(0f, hasAmount ? amount : turnAngle, 0f);
                    break;
                case "look_up":
                    SetTilt(tilt + (hasAmount ? amount : tiltAngle));
                    break;
                case "look_down":
                    SetTilt(tilt - (hasAmount ? amount : tiltAngle));
                    break;
                default: // stop
                    terminated = true;
                    break;
            }
            if (!terminated) stepIndex++;
            pathLength += Vector3.Distance(lastPosition, transform.position);
            lastPosition = transform.position;
            bool truncated = !terminated && stepIndex >= maxSteps;
            float d = DistanceToGoal();
            bool success = terminated && d >= 0f && d <= successDistance;
            if (terminated || truncated) episodeOpen = false;
            return Observation(id, collided, terminated, truncated, Info(success), null);
        }

        /// <summary>Moves through the CharacterController; true when something blocked part of the move.</summary>
        bool MoveForward(float distance)
        {
            Vector3 before = transform.position;
            Vector3 delta = transform.forward * distance;
            CollisionFlags flags = controller.Move(delta);
            Vector3 after = transform.position;
            float moved = Vector3.Distance(new Vector3(before.x, 0f, before.z), new Vector3(after.x, 0f, after.z));
            if (groundSnap > 0f) controller.Move(new Vector3(0f, -groundSnap, 0f));
            return (flags & CollisionFlags.Sides) != 0 || moved < 0.9f * Math.Abs(distance);
        }

        void SetTilt(float degrees)
        {
            tilt = Math.Max(-maxTilt, Math.Min(maxTilt, degrees));
            agentCamera.transform.localRotation = Quaternion.Euler(-tilt, 0f, 0f); // Unity: +X pitches down
        }

        /// <summary>Metres to the goal target along the NavMesh (or straight), -1 when unknown.</summary>
        float DistanceToGoal()
        {
            if (goalTarget == null) return -1f;
            Vector3 from = transform.position;
            Vector3 to = goalTarget.position;
            if (useNavMesh)
            {
                var path = new NavMeshPath();
                if (NavMesh.CalculatePath(from, to, NavMesh.AllAreas, path) && path.status == NavMeshPathStatus.PathComplete)
                {
                    Vector3[] c = path.corners;
                    float length = 0f;
                    for (int i = 1; i < c.Length; i++) length += Vector3.Distance(c[i - 1], c[i]);
                    return length;
                }
            }
            return Vector3.Distance(from, to);
        }

        Dictionary<string, object> Info(bool success)
        {
            float d = DistanceToGoal();
            var info = new Dictionary<string, object>();
            info["distanceToGoal"] = d >= 0f ? (object)(double)d : null;
            info["success"] = success;
            info["shortestPathLength"] = shortestPathLength >= 0f ? (object)(double)shortestPathLength : null;
            info["pathLength"] = (double)pathLength;
            info["episode"] = currentEpisode;
            info["task"] = currentTask;
            return info;
        }

        static List<object> Vec(Vector3 v)
        {
            return new List<object> { (double)v.x, (double)v.y, (double)v.z };
        }

        /// <summary>Renders the camera into the RenderTexture and encodes it (JPEG or PNG, as agreed in welcome).</summary>
        byte[] Capture()
        {
            RenderTexture previousTarget = agentCamera.targetTexture;
            RenderTexture previousActive = RenderTexture.active;
            agentCamera.targetTexture = renderTexture;
            agentCamera.Render();
            RenderTexture.active = renderTexture;
            readback.ReadPixels(new Rect(0, 0, width, height), 0, 0);
            readback.Apply();
            RenderTexture.active = previousActive;
            agentCamera.targetTexture = previousTarget;
            return connection.Encoding == "png" ? ImageConversion.EncodeToPNG(readback) : ImageConversion.EncodeToJPG(readback, jpegQuality);
        }

        byte[] Observation(long id, bool collided, bool terminated, bool truncated, Dictionary<string, object> info, Dictionary<string, object> goal)
        {
            byte[] image = Capture();
            var header = new Dictionary<string, object>();
            header["op"] = "observation";
            header["id"] = id;
            header["step"] = stepIndex;
            header["pose"] = new Dictionary<string, object>
            {
                { "position", Vec(transform.position) },
                { "rotation", new List<object> { (double)transform.rotation.x, (double)transform.rotation.y, (double)transform.rotation.z, (double)transform.rotation.w } },
            };
            header["collided"] = collided;
            header["info"] = info;
            header["terminated"] = terminated;
            header["truncated"] = truncated;
            header["image"] = new Dictionary<string, object> { { "width", width }, { "height", height }, { "encoding", connection.Encoding }, { "byteLength", image.Length } };
            if (goal != null) header["goal"] = goal;
            return V4sProtocol.BinaryMessage(header, image);
        }
    }

    /// <summary>An error with a stable v4s.sim.v1 code, answered to the agent as an `error` message.</summary>
    public class V4sException : Exception
    {
        public readonly string Code;
        public V4sException(string code, string message) : base(message) { Code = code; }
    }

    /// <summary>
    /// The WebSocket side, free of UnityEngine: dials the agent, does the handshake, validates requests and
    /// queues them for the main thread (Inbox); sends replies in order from a background task.
    /// </summary>
    public class V4sConnection
    {
        public const string Protocol = "v4s.sim.v1";
        public const int MaxIncoming = 1024 * 1024; // agent -> simulator messages are JSON, at most 1 MiB
        public enum IncomingKind { Request, Disconnected }

        public struct Incoming
        {
            public IncomingKind Kind;
            public Dictionary<string, object> Request;
            /// <summary>The connection it came from: a reply to an older one is dropped, never sent on a newer one.</summary>
            public int Generation;
        }

        /// <summary>Validated reset/step/oracle requests (and disconnections), for the main thread.</summary>
        public readonly ConcurrentQueue<Incoming> Inbox = new ConcurrentQueue<Incoming>();
        /// <summary>The image encoding agreed in welcome.</summary>
        public volatile string Encoding;
        public Action<string> Log = m => { };

        readonly Uri uri;
        readonly string token;
        readonly float reconnectSeconds;
        readonly Dictionary<string, object> capabilities;
        readonly List<string> encodings;
        readonly ConcurrentQueue<Outgoing> outbox = new ConcurrentQueue<Outgoing>();
        readonly SemaphoreSlim outboxSignal = new SemaphoreSlim(0);
        volatile ClientWebSocket socket;
        volatile int generation;
        long maxPayload = 64L * 1024 * 1024;

        struct Outgoing
        {
            public byte[] Data;
            public WebSocketMessageType Type;
            public bool Close;
            public WebSocketCloseStatus CloseStatus;
        }

        /// <summary>The current connection's number (see Incoming.Generation).</summary>
        public int Generation { get { return generation; } }

        /// <summary>True while a socket to the agent is open.</summary>
        public bool IsConnected { get { return socket != null; } }

        /// <summary>True once RunAsync has returned (cancelled, or the link dropped with reconnectSeconds 0).</summary>
        public bool IsFinished { get; private set; }

        public V4sConnection(string url, string token, float reconnectSeconds, Dictionary<string, object> capabilities, List<string> encodings)
        {
            uri = new Uri(url);
            this.token = token;
            this.reconnectSeconds = reconnectSeconds;
            this.capabilities = capabilities;
            this.encodings = encodings;
            capabilities["encodings"] = new List<object>(encodings.ConvertAll(e => (object)e));
            Encoding = encodings[0];
        }

        /// <summary>Dials, serves the session, and dials again after a drop (unless reconnectSeconds is 0).</summary>
        public async Task RunAsync(CancellationToken ct)
        {
            while (!ct.IsCancellationRequested)
            {
                var ws = new ClientWebSocket();
                try
                {
                    await ws.ConnectAsync(uri, ct);
                    Outgoing stale;
                    while (outbox.TryDequeue(out stale)) { } // nothing of an earlier connection goes out on this one
                    Encoding = encodings[0];
                    maxPayload = 64L * 1024 * 1024;
                    generation++;
                    socket = ws;
                    Log("connected to " + uri);
                    Task sender = SendLoopAsync(ws, ct);
                    await SessionAsync(ws, ct);
                    // The session is over: after whatever is queued, close (a no-op when a close went out already).
                    outbox.Enqueue(new Outgoing { Close = true, CloseStatus = WebSocketCloseStatus.NormalClosure });
                    outboxSignal.Release();
                    await sender;
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                catch (Exception e)
                {
                    Log("connection to " + uri + " failed or dropped: " + e.Message);
                }
                finally
                {
                    socket = null;
                    Inbox.Enqueue(new Incoming { Kind = IncomingKind.Disconnected });
                    ws.Dispose();
                }
                if (reconnectSeconds <= 0f) break;
                try { await Task.Delay(TimeSpan.FromSeconds(reconnectSeconds), ct); } catch (OperationCanceledException) { break; }
            }
            IsFinished = true;
        }

        async Task SessionAsync(ClientWebSocket ws, CancellationToken ct)
        {
            var hello = new Dictionary<string, object> { { "op", "hello" }, { "protocol", Protocol }, { "capabilities", capabilities } };
            if (!string.IsNullOrEmpty(token)) hello["token"] = token; // we dialed: the listening agent checks it
            SendText(MiniJson.Serialize(hello));

            // Handshake: the first message must be welcome (or the agent's error).
            Message first = await ReceiveAsync(ws, TimeSpan.FromSeconds(10), ct);
            if (first == null) { Refuse("E_TIMEOUT", "no welcome within 10 s after hello", WebSocketCloseStatus.PolicyViolation); return; }
            if (first.Binary) { Refuse("E_PROTOCOL_BINARY", "expected welcome (a text message), got a binary message", WebSocketCloseStatus.ProtocolError); return; }
            Dictionary<string, object> welcome;
            try { welcome = V4sProtocol.ParseAgentMessage(first.Text); }
            catch (V4sException e) { Refuse(e.Code, "expected welcome: " + e.Message, WebSocketCloseStatus.ProtocolError); return; }
            string op = (string)welcome["op"];
            if (op == "error")
            {
                Log("the agent refused the session: " + welcome["code"] + ": " + welcome["message"]);
                return;
            }
            if (op != "welcome") { Refuse("E_PROTOCOL_OP", "expected welcome, got " + op, WebSocketCloseStatus.ProtocolError); return; }
            object enc, max;
            if (welcome.TryGetValue("encoding", out enc))
            {
                if (!encodings.Contains((string)enc)) { Refuse("E_PROTOCOL_FIELD", "welcome: encoding \"" + enc + "\" is not offered", WebSocketCloseStatus.ProtocolError); return; }
                Encoding = (string)enc;
            }
            if (welcome.TryGetValue("maxPayload", out max)) maxPayload = (long)max;
            Log("session open (encoding " + Encoding + ")");

            while (ws.State == WebSocketState.Open && !ct.IsCancellationRequested)
            {
                Message m = await ReceiveAsync(ws, Timeout.InfiniteTimeSpan, ct);
                if (m == null) return; // closed
                if (m.Binary)
                {
                    SendError("E_PROTOCOL_BINARY", "the agent sent a " + m.Length + "-byte binary message; agents send only text", null);
                    continue;
                }
                Dictionary<string, object> msg;
                try { msg = V4sProtocol.ParseAgentMessage(m.Text); }
                catch (V4sException e) { SendError(e.Code, e.Message, V4sProtocol.PeekId(m.Text)); continue; }
                switch ((string)msg["op"])
                {
                    case "close":
                        outbox.Enqueue(new Outgoing { Close = true, CloseStatus = WebSocketCloseStatus.NormalClosure });
                        outboxSignal.Release();
                        return;
                    case "error":
                        Log("the agent reported " + msg["code"] + ": " + msg["message"]);
                        break;
                    case "welcome":
                        SendError("E_PROTOCOL_OP", "welcome: the handshake is already complete", null);
                        break;
                    default: // reset, step, oracle: Unity API work, on the main thread
                        Inbox.Enqueue(new Incoming { Kind = IncomingKind.Request, Request = msg, Generation = generation });
                        break;
                }
            }
        }

        void Refuse(string code, string message, WebSocketCloseStatus status)
        {
            Log("refused: " + code + ": " + message);
            SendError(code, message, null);
            outbox.Enqueue(new Outgoing { Close = true, CloseStatus = status });
            outboxSignal.Release();
        }

        class Message
        {
            public bool Binary;
            public string Text;
            public int Length;
        }

        /// <summary>One whole message (fragments joined), null when the socket closed or `timeout` passed.</summary>
        async Task<Message> ReceiveAsync(ClientWebSocket ws, TimeSpan timeout, CancellationToken ct)
        {
            var buffer = new byte[64 * 1024];
            var data = new List<byte>();
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                if (timeout != Timeout.InfiniteTimeSpan) linked.CancelAfter(timeout);
                while (true)
                {
                    WebSocketReceiveResult r;
                    try { r = await ws.ReceiveAsync(new ArraySegment<byte>(buffer), linked.Token); }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return null; }
                    if (r.MessageType == WebSocketMessageType.Close) return null;
                    for (int i = 0; i < r.Count; i++) data.Add(buffer[i]);
                    if (data.Count > MaxIncoming)
                    {
                        outbox.Enqueue(new Outgoing { Close = true, CloseStatus = WebSocketCloseStatus.MessageTooBig });
                        outboxSignal.Release();
                        return null;
                    }
                    if (r.EndOfMessage)
                    {
                        var m = new Message { Binary = r.MessageType == WebSocketMessageType.Binary, Length = data.Count };
                        if (!m.Binary) m.Text = new UTF8Encoding(false, true).GetString(data.ToArray());
                        return m;
                    }
                }
            }
        }

        /// <summary>Sends the outbox in order until a close entry; returns then (or when the socket fails).</summary>
        async Task SendLoopAsync(ClientWebSocket ws, CancellationToken ct)
        {
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    await outboxSignal.WaitAsync(ct);
                    Outgoing o;
                    while (outbox.TryDequeue(out o))
                    {
                        if (o.Close)
                        {
                            if (ws.State == WebSocketState.Open || ws.State == WebSocketState.CloseReceived)
                                await ws.CloseOutputAsync(o.CloseStatus, "v4s bridge closed the session", CancellationToken.None);
                            return;
                        }
                        if (ws.State != WebSocketState.Open) continue; // the agent is gone: drop the reply
                        await ws.SendAsync(new ArraySegment<byte>(o.Data), o.Type, true, ct);
                    }
                }
            }
            catch (OperationCanceledException) { }
            catch (WebSocketException e) { Log("send failed: " + e.Message); }
        }

        public void SendText(string text)
        {
            outbox.Enqueue(new Outgoing { Data = new UTF8Encoding(false).GetBytes(text), Type = WebSocketMessageType.Text });
            outboxSignal.Release();
        }

        /// <summary>
        /// Sends one binary reply to a request of connection `gen` (dropped when that connection is gone), or
        /// E_PROTOCOL_TOO_LARGE when it exceeds the agent's maxPayload.
        /// </summary>
        public void SendBinary(int gen, long id, byte[] message)
        {
            if (gen != generation) return;
            if (message.Length > maxPayload)
            {
                SendError(gen, "E_PROTOCOL_TOO_LARGE", "reply to id " + id + " is " + message.Length + " bytes, over the agent's maxPayload " + maxPayload, id);
                return;
            }
            outbox.Enqueue(new Outgoing { Data = message, Type = WebSocketMessageType.Binary });
            outboxSignal.Release();
        }

        /// <summary>An error reply to a request of connection `gen` (dropped when that connection is gone).</summary>
        public void SendError(int gen, string code, string message, long? id)
        {
            if (gen == generation) SendError(code, message, id);
        }

        void SendError(string code, string message, long? id)
        {
            if (message.Length > 4096) message = message.Substring(0, 4095) + "\u2026";
            var e = new Dictionary<string, object> { { "op", "error" }, { "id", id.HasValue ? (object)id.Value : null }, { "code", code }, { "message", message } };
            SendText(MiniJson.Serialize(e));
        }

        /// <summary>Closes the socket at once (the scene is shutting down).</summary>
        public void Close()
        {
            ClientWebSocket ws = socket;
            if (ws == null) return;
            try { ws.CloseOutputAsync(WebSocketCloseStatus.EndpointUnavailable, "Unity scene stopped", CancellationToken.None).Wait(1000); }
            catch (Exception) { ws.Abort(); }
        }
    }

    /// <summary>Message parsing and framing of v4s.sim.v1 (docs/protocol.md §3, §4).</summary>
    public static class V4sProtocol
    {
        public const long MaxRequestId = 2147483647L;

        /// <summary>uint32 LE header length | UTF-8 JSON header | image bytes: one binary WebSocket message.</summary>
        public static byte[] BinaryMessage(Dictionary<string, object> header, byte[] payload)
        {
            byte[] head = new UTF8Encoding(false).GetBytes(MiniJson.Serialize(header));
            var message = new byte[4 + head.Length + payload.Length];
            uint n = (uint)head.Length;
            message[0] = (byte)n;
            message[1] = (byte)(n >> 8);
            message[2] = (byte)(n >> 16);
            message[3] = (byte)(n >> 24);
            Buffer.BlockCopy(head, 0, message, 4, head.Length);
            Buffer.BlockCopy(payload, 0, message, 4 + head.Length, payload.Length);
            return message;
        }

        /// <summary>The request id of a text message, when it has a valid one (for error replies).</summary>
        public static long? PeekId(string text)
        {
            try
            {
                var o = MiniJson.Deserialize(text) as Dictionary<string, object>;
                object v;
                if (o != null && o.TryGetValue("id", out v) && IsId(v)) return (long)(double)v;
            }
            catch (V4sException) { }
            return null;
        }

        static bool IsId(object v)
        {
            return v is double && (double)v >= 0 && (double)v <= MaxRequestId && Math.Floor((double)v) == (double)v;
        }

        static V4sException Field(string where, string path, string expected)
        {
            return new V4sException("E_PROTOCOL_FIELD", where + ": field \"" + path + "\" " + expected);
        }

        static string Name(object v, string where, string path)
        {
            var s = v as string;
            if (s == null || s.Length < 1 || s.Length > 256) throw Field(where, path, "must be a string of 1…256 characters");
            return s;
        }

        /// <summary>Validates a text message from the agent; ids become long, numbers double. Throws V4sException.</summary>
        public static Dictionary<string, object> ParseAgentMessage(string text)
        {
            object parsed = MiniJson.Deserialize(text);
            var o = parsed as Dictionary<string, object>;
            if (o == null) throw new V4sException("E_PROTOCOL_FIELD", "text message must be a JSON object");
            object opObj, v;
            var op = o.TryGetValue("op", out opObj) ? opObj as string : null;
            if (op == null) throw new V4sException("E_PROTOCOL_FIELD", "text message has no \"op\" string");
            string where = op;
            var msg = new Dictionary<string, object> { { "op", op } };
            switch (op)
            {
                case "welcome":
                    if (!o.TryGetValue("protocol", out v) || !(v is string) || (string)v != V4sConnection.Protocol)
                        throw new V4sException("E_PROTOCOL_VERSION", "welcome: protocol is not " + V4sConnection.Protocol);
                    if (o.TryGetValue("encoding", out v) && v != null)
                    {
                        var e = v as string;
                        if (e != "raw" && e != "png" && e != "jpeg") throw Field(where, "encoding", "must be one of \"raw\", \"png\", \"jpeg\"");
                        msg["encoding"] = e;
                    }
                    if (o.TryGetValue("maxPayload", out v) && v != null)
                    {
                        if (!(v is double) || (double)v < 65536 || (double)v > 4294967296.0 || Math.Floor((double)v) != (double)v)
                            throw Field(where, "maxPayload", "must be an integer in 65536…4294967296");
                        msg["maxPayload"] = (long)(double)v;
                    }
                    return msg;
                case "reset":
                case "step":
                case "oracle":
                    if (!o.TryGetValue("id", out v) || !IsId(v)) throw Field(where, "id", "must be an integer in 0…2147483647");
                    long id = (long)(double)v;
                    msg["id"] = id;
                    where = op + " (id " + id + ")";
                    if (op == "reset")
                    {
                        if (o.TryGetValue("seed", out v) && v != null)
                        {
                            if (!(v is double) || (double)v < 0 || (double)v > 9007199254740991.0 || Math.Floor((double)v) != (double)v)
                                throw Field(where, "seed", "must be an integer in 0…9007199254740991");
                            msg["seed"] = (long)(double)v;
                        }
                        if (o.TryGetValue("task", out v) && v != null)
                        {
                            var t = v as string;
                            if (t != "objectnav" && t != "imagenav" && t != "pointnav") throw Field(where, "task", "must be one of \"objectnav\", \"imagenav\", \"pointnav\"");
                            msg["task"] = t;
                        }
                        if (o.TryGetValue("episode", out v) && v != null) msg["episode"] = Name(v, where, "episode");
                    }
                    else if (op == "step")
                    {
                        var a = o.TryGetValue("action", out v) ? v as Dictionary<string, object> : null;
                        if (a == null) throw Field(where, "action", "must be a JSON object");
                        var action = new Dictionary<string, object>();
                        action["name"] = Name(a.TryGetValue("name", out v) ? v : null, where, "action.name");
                        if (a.TryGetValue("amount", out v) && v != null)
                        {
                            if (!(v is double) || double.IsNaN((double)v) || double.IsInfinity((double)v)) throw Field(where, "action.amount", "must be a finite number");
                            action["amount"] = v;
                        }
                        msg["action"] = action;
                    }
                    return msg;
                case "close":
                    return msg;
                case "error":
                    msg["code"] = o.TryGetValue("code", out v) ? Convert.ToString(v, CultureInfo.InvariantCulture) : "";
                    msg["message"] = o.TryGetValue("message", out v) ? Convert.ToString(v, CultureInfo.InvariantCulture) : "";
                    return msg;
                case "hello":
                case "observation":
                    throw new V4sException("E_PROTOCOL_OP", "op \"" + op + "\" is sent by the simulator, not the agent");
                default:
                    throw new V4sException("E_PROTOCOL_OP", "unknown op \"" + (op.Length > 64 ? op.Substring(0, 64) : op) + "\"");
            }
        }
    }

    /// <summary>
    /// A small JSON reader and writer (Unity's JsonUtility has no dictionaries or nulls). Objects are
    /// Dictionary&lt;string, object&gt;, arrays List&lt;object&gt;, numbers double, plus string, bool and null.
    /// </summary>
    public static class MiniJson
    {
        const int MaxDepth = 64;

        public static object Deserialize(string json)
        {
            int i = 0;
            object v = Value(json, ref i, 0);
            SkipSpace(json, ref i);
            if (i != json.Length) throw Bad("unexpected text after the value", i);
            return v;
        }

        static V4sException Bad(string what, int at)
        {
            return new V4sException("E_PROTOCOL_JSON", "text message is not valid JSON: " + what + " at character " + at);
        }

        static void SkipSpace(string s, ref int i)
        {
            while (i < s.Length && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
        }

        static object Value(string s, ref int i, int depth)
        {
            if (depth > MaxDepth) throw Bad("nesting deeper than " + MaxDepth, i);
            SkipSpace(s, ref i);
            if (i >= s.Length) throw Bad("unexpected end", i);
            char c = s[i];
            if (c == '{')
            {
                var o = new Dictionary<string, object>();
                i++;
                SkipSpace(s, ref i);
                if (i < s.Length && s[i] == '}') { i++; return o; }
                while (true)
                {
                    SkipSpace(s, ref i);
                    if (i >= s.Length || s[i] != '"') throw Bad("expected a string key", i);
                    string key = Str(s, ref i);
                    SkipSpace(s, ref i);
                    if (i >= s.Length || s[i] != ':') throw Bad("expected ':'", i);
                    i++;
                    o[key] = Value(s, ref i, depth + 1);
                    SkipSpace(s, ref i);
                    if (i < s.Length && s[i] == ',') { i++; continue; }
                    if (i < s.Length && s[i] == '}') { i++; return o; }
                    throw Bad("expected ',' or '}'", i);
                }
            }
            if (c == '[')
            {
                var a = new List<object>();
                i++;
                SkipSpace(s, ref i);
                if (i < s.Length && s[i] == ']') { i++; return a; }
                while (true)
                {
                    a.Add(Value(s, ref i, depth + 1));
                    SkipSpace(s, ref i);
                    if (i < s.Length && s[i] == ',') { i++; continue; }
                    if (i < s.Length && s[i] == ']') { i++; return a; }
                    throw Bad("expected ',' or ']'", i);
                }
            }
            if (c == '"') return Str(s, ref i);
            if (Literal(s, ref i, "true")) return true;
            if (Literal(s, ref i, "false")) return false;
            if (Literal(s, ref i, "null")) return null;
            int start = i;
            while (i < s.Length && "+-0123456789.eE".IndexOf(s[i]) >= 0) i++;
            double d;
            if (i == start || !double.TryParse(s.Substring(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture, out d)
                || double.IsInfinity(d))
                throw Bad("invalid value", start);
            return d;
        }

        static bool Literal(string s, ref int i, string word)
        {
            if (string.CompareOrdinal(s, i, word, 0, word.Length) != 0) return false;
            i += word.Length;
            return true;
        }

        static string Str(string s, ref int i)
        {
            var sb = new StringBuilder();
            i++; // opening quote
            while (i < s.Length)
            {
                char c = s[i++];
                if (c == '"') return sb.ToString();
                if (c == '\\')
                {
                    if (i >= s.Length) break;
                    char e = s[i++];
                    switch (e)
                    {
                        case '"': sb.Append('"'); break;
                        case '\\': sb.Append('\\'); break;
                        case '/': sb.Append('/'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'n': sb.Append('\n'); break;
                        case 'r': sb.Append('\r'); break;
                        case 't': sb.Append('\t'); break;
                        case 'u':
                            int code;
                            if (i + 4 > s.Length || !int.TryParse(s.Substring(i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out code))
                                throw Bad("bad \\u escape", i);
                            sb.Append((char)code);
                            i += 4;
                            break;
                        default: throw Bad("bad escape", i);
                    }
                }
                else if (c < ' ') throw Bad("control character in a string", i);
                else sb.Append(c);
            }
            throw Bad("unterminated string", i);
        }

        public static string Serialize(object value)
        {
            var sb = new StringBuilder();
            Write(sb, value);
            return sb.ToString();
        }

        static void Write(StringBuilder sb, object v)
        {
            if (v == null) { sb.Append("null"); return; }
            var s = v as string;
            if (s != null) { WriteString(sb, s); return; }
            if (v is bool) { sb.Append((bool)v ? "true" : "false"); return; }
            if (v is int || v is long) { sb.Append(Convert.ToString(v, CultureInfo.InvariantCulture)); return; }
            if (v is float || v is double)
            {
                double d = Convert.ToDouble(v, CultureInfo.InvariantCulture);
                // JSON has no NaN/Infinity: null, as docs/protocol.md §5.4 allows for unknown measures
                if (double.IsNaN(d) || double.IsInfinity(d)) sb.Append("null");
                else sb.Append(d.ToString("R", CultureInfo.InvariantCulture));
                return;
            }
            var dict = v as Dictionary<string, object>;
            if (dict != null)
            {
                sb.Append('{');
                bool first = true;
                foreach (var kv in dict)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteString(sb, kv.Key);
                    sb.Append(':');
                    Write(sb, kv.Value);
                }
                sb.Append('}');
                return;
            }
            var list = v as System.Collections.IEnumerable;
            if (list != null)
            {
                sb.Append('[');
                bool first = true;
                foreach (object item in list)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    Write(sb, item);
                }
                sb.Append(']');
                return;
            }
            throw new ArgumentException("MiniJson cannot write a " + v.GetType());
        }

        static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < ' ') sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
        }
    }
}
