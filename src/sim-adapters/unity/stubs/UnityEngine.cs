// STUBS of the few UnityEngine types V4sAgentBridge.cs uses: NOT Unity. They exist so that the bridge can be
// compiled (and run by a test host) outside Unity, with Debian's mono-mcs:
//
//     mcs -target:library -out:/tmp/V4sAgentBridge.dll V4sAgentBridge.cs stubs/UnityEngine.cs
//
// Every signature is copied from Unity's Scripting API reference (docs.unity3d.com/ScriptReference, 2022.3 and
// Unity 6): e.g. `public CollisionFlags Move(Vector3 motion)`, `public static byte[] EncodeToJPG(Texture2D tex,
// int quality)`, `public void ReadPixels(Rect source, int destX, int destY, bool recalculateMipMaps = true)`,
// `public static bool CalculatePath(Vector3 sourcePosition, Vector3 targetPosition, int areaMask, NavMeshPath
// path)`. The bodies do the least that lets a test host run the bridge: vector and quaternion math, a transform
// that stores its pose, a CharacterController that moves it, PNG "capture" of a flat grey image. Never ship these
// into a Unity project: Unity has the real types.

using System;
using System.Collections.Generic;
using System.IO;

namespace UnityEngine
{
    public class Object
    {
        public string name { get; set; }
    }

    public class Component : Object
    {
        internal GameObject owner;
        public GameObject gameObject { get { return owner; } }
        public Transform transform { get { return owner.transform; } }
        public T GetComponent<T>() { return owner.GetComponent<T>(); }
    }

    public class Behaviour : Component
    {
        public bool enabled { get; set; } = true;
    }

    public class MonoBehaviour : Behaviour { }

    public sealed class GameObject : Object
    {
        readonly List<Component> components = new List<Component>();
        public Transform transform { get; private set; }

        public GameObject(string name)
        {
            this.name = name;
            transform = new Transform();
            transform.owner = this;
            transform.name = name;
            components.Add(transform);
        }

        public T AddComponent<T>() where T : Component
        {
            T c = (T)Activator.CreateInstance(typeof(T));
            c.owner = this;
            c.name = name;
            components.Add(c);
            return c;
        }

        public T GetComponent<T>()
        {
            foreach (Component c in components) if (c is T) return (T)(object)c;
            return default(T);
        }
    }

    public class Transform : Component
    {
        Transform parentTransform;
        public Vector3 localPosition { get; set; }
        public Quaternion localRotation { get; set; } = Quaternion.identity;
        public Transform parent { get { return parentTransform; } set { parentTransform = value; } }

        public Vector3 position
        {
            get { return parentTransform == null ? localPosition : parentTransform.position + parentTransform.rotation * localPosition; }
            set { localPosition = parentTransform == null ? value : Quaternion.Inverse(parentTransform.rotation) * (value - parentTransform.position); }
        }

        public Quaternion rotation
        {
            get { return parentTransform == null ? localRotation : parentTransform.rotation * localRotation; }
            set { localRotation = parentTransform == null ? value : Quaternion.Inverse(parentTransform.rotation) * value; }
        }

        public Vector3 forward { get { return rotation * Vector3.forward; } }

        public void Rotate(float xAngle, float yAngle, float zAngle)
        {
            localRotation = localRotation * Quaternion.Euler(xAngle, yAngle, zAngle); // Space.Self
        }

        public void SetPositionAndRotation(Vector3 position, Quaternion rotation)
        {
            this.position = position;
            this.rotation = rotation;
        }
    }

    public class Collider : Component
    {
        public bool enabled { get; set; } = true;
    }

    [Flags]
    public enum CollisionFlags { None = 0, Sides = 1, CollidedSides = 1, Above = 2, CollidedAbove = 2, Below = 4, CollidedBelow = 4 }

    public class CharacterController : Collider
    {
        public CollisionFlags Move(Vector3 motion)
        {
            transform.position = transform.position + motion;
            return CollisionFlags.None;
        }
    }

    public class Texture : Object
    {
        public virtual int width { get; set; }
        public virtual int height { get; set; }
    }

    public class RenderTexture : Texture
    {
        public RenderTexture(int width, int height, int depth)
        {
            this.width = width;
            this.height = height;
        }

        public static RenderTexture active { get; set; }

        public void Release() { }
    }

    public enum TextureFormat { Alpha8 = 1, ARGB4444 = 2, RGB24 = 3, RGBA32 = 4, ARGB32 = 5 }

    public sealed class Texture2D : Texture
    {
        public Texture2D(int width, int height, TextureFormat textureFormat, bool mipChain)
        {
            this.width = width;
            this.height = height;
        }

        public void ReadPixels(Rect source, int destX, int destY, bool recalculateMipMaps = true) { }

        public void Apply(bool updateMipmaps = true, bool makeNoLongerReadable = false) { }
    }

    public struct Rect
    {
        public float x, y, width, height;

        public Rect(float x, float y, float width, float height)
        {
            this.x = x;
            this.y = y;
            this.width = width;
            this.height = height;
        }
    }

    public static class ImageConversion
    {
        public static byte[] EncodeToPNG(Texture2D tex)
        {
            return StubPng.Grey(tex.width, tex.height, 128);
        }

        public static byte[] EncodeToJPG(Texture2D tex, int quality)
        {
            throw new NotSupportedException("stub: EncodeToJPG needs Unity; ask for PNG");
        }

        public static byte[] EncodeToJPG(Texture2D tex)
        {
            return EncodeToJPG(tex, 75);
        }
    }

    public class Camera : Behaviour
    {
        public float fieldOfView { get; set; } = 60f;
        public RenderTexture targetTexture { get; set; }
        public void Render() { }
    }

    public struct Vector3
    {
        public float x, y, z;

        public Vector3(float x, float y, float z)
        {
            this.x = x;
            this.y = y;
            this.z = z;
        }

        public static Vector3 forward { get { return new Vector3(0f, 0f, 1f); } }
        public static Vector3 zero { get { return new Vector3(0f, 0f, 0f); } }

        public static Vector3 operator +(Vector3 a, Vector3 b) { return new Vector3(a.x + b.x, a.y + b.y, a.z + b.z); }
        public static Vector3 operator -(Vector3 a, Vector3 b) { return new Vector3(a.x - b.x, a.y - b.y, a.z - b.z); }
        public static Vector3 operator *(Vector3 a, float d) { return new Vector3(a.x * d, a.y * d, a.z * d); }

        public static float Distance(Vector3 a, Vector3 b)
        {
            Vector3 d = a - b;
            return (float)Math.Sqrt(d.x * d.x + d.y * d.y + d.z * d.z);
        }
    }

    public struct Quaternion
    {
        public float x, y, z, w;

        public Quaternion(float x, float y, float z, float w)
        {
            this.x = x;
            this.y = y;
            this.z = z;
            this.w = w;
        }

        public static Quaternion identity { get { return new Quaternion(0f, 0f, 0f, 1f); } }

        static Quaternion Axis(float deg, float ax, float ay, float az)
        {
            double h = deg * Math.PI / 360.0;
            float s = (float)Math.Sin(h);
            return new Quaternion(ax * s, ay * s, az * s, (float)Math.Cos(h));
        }

        /// <summary>Rotates z degrees about z, then x about x, then y about y (Unity's order).</summary>
        public static Quaternion Euler(float x, float y, float z)
        {
            return Axis(y, 0f, 1f, 0f) * Axis(x, 1f, 0f, 0f) * Axis(z, 0f, 0f, 1f);
        }

        public static Quaternion Inverse(Quaternion q) { return new Quaternion(-q.x, -q.y, -q.z, q.w); }

        public static Quaternion operator *(Quaternion a, Quaternion b)
        {
            return new Quaternion(
                a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
                a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
                a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w,
                a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z);
        }

        public static Vector3 operator *(Quaternion q, Vector3 v)
        {
            Quaternion p = q * new Quaternion(v.x, v.y, v.z, 0f) * Inverse(q);
            return new Vector3(p.x, p.y, p.z);
        }
    }

    public static class Debug
    {
        public static Action<string> Sink = m => Console.Error.WriteLine(m);
        public static void Log(object message) { Sink(Convert.ToString(message)); }
        public static void LogWarning(object message) { Sink("warning: " + message); }
        public static void LogError(object message) { Sink("error: " + message); }
        public static void LogException(Exception exception) { Sink("exception: " + exception); }
    }

    public class PropertyAttribute : Attribute { }

    [AttributeUsage(AttributeTargets.Field, Inherited = true, AllowMultiple = true)]
    public class HeaderAttribute : PropertyAttribute
    {
        public readonly string header;
        public HeaderAttribute(string header) { this.header = header; }
    }

    [AttributeUsage(AttributeTargets.Field, Inherited = true, AllowMultiple = false)]
    public class TooltipAttribute : PropertyAttribute
    {
        public readonly string tooltip;
        public TooltipAttribute(string tooltip) { this.tooltip = tooltip; }
    }

    [AttributeUsage(AttributeTargets.Field, Inherited = true, AllowMultiple = false)]
    public sealed class RangeAttribute : PropertyAttribute
    {
        public readonly float min;
        public readonly float max;
        public RangeAttribute(float min, float max) { this.min = min; this.max = max; }
    }

    [AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
    public sealed class RequireComponent : Attribute
    {
        public Type m_Type0;
        public RequireComponent(Type requiredComponent) { m_Type0 = requiredComponent; }
    }

    /// <summary>Not Unity: a flat grey PNG (stored deflate blocks), so a stub "capture" decodes.</summary>
    static class StubPng
    {
        static uint Crc(byte[] data, int offset, int count)
        {
            uint c = 0xFFFFFFFF;
            for (int i = offset; i < offset + count; i++)
            {
                c ^= data[i];
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            }
            return c ^ 0xFFFFFFFF;
        }

        static void Be(Stream s, uint v)
        {
            s.WriteByte((byte)(v >> 24)); s.WriteByte((byte)(v >> 16)); s.WriteByte((byte)(v >> 8)); s.WriteByte((byte)v);
        }

        static void Chunk(Stream s, string type, byte[] data)
        {
            var body = new byte[4 + data.Length];
            for (int i = 0; i < 4; i++) body[i] = (byte)type[i];
            Buffer.BlockCopy(data, 0, body, 4, data.Length);
            Be(s, (uint)data.Length);
            s.Write(body, 0, body.Length);
            Be(s, Crc(body, 0, body.Length));
        }

        public static byte[] Grey(int width, int height, byte value)
        {
            var raw = new byte[height * (1 + width * 3)];
            for (int r = 0; r < height; r++)
                for (int i = 0; i < width * 3; i++) raw[r * (1 + width * 3) + 1 + i] = value;
            var z = new MemoryStream();
            z.WriteByte(0x78); z.WriteByte(0x01);
            for (int off = 0; off < raw.Length || off == 0; off += 65535)
            {
                int n = Math.Min(65535, raw.Length - off);
                z.WriteByte((byte)(off + n >= raw.Length ? 1 : 0));
                z.WriteByte((byte)n); z.WriteByte((byte)(n >> 8));
                z.WriteByte((byte)~n); z.WriteByte((byte)(~n >> 8));
                z.Write(raw, off, n);
                if (n == 0) break;
            }
            uint a = 1, b = 0;
            foreach (byte x in raw) { a = (a + x) % 65521; b = (b + a) % 65521; }
            Be(z, (b << 16) | a);
            var png = new MemoryStream();
            png.Write(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, 0, 8);
            var ihdr = new MemoryStream();
            Be(ihdr, (uint)width); Be(ihdr, (uint)height);
            ihdr.WriteByte(8); ihdr.WriteByte(2); ihdr.WriteByte(0); ihdr.WriteByte(0); ihdr.WriteByte(0);
            Chunk(png, "IHDR", ihdr.ToArray());
            Chunk(png, "IDAT", z.ToArray());
            Chunk(png, "IEND", new byte[0]);
            return png.ToArray();
        }
    }
}

namespace UnityEngine.AI
{
    public enum NavMeshPathStatus { PathComplete = 0, PathPartial = 1, PathInvalid = 2 }

    public sealed class NavMeshPath
    {
        public NavMeshPath() { }
        public Vector3[] corners { get { return new Vector3[0]; } }
        public NavMeshPathStatus status { get { return NavMeshPathStatus.PathInvalid; } }
    }

    public static class NavMesh
    {
        public const int AllAreas = -1;

        public static bool CalculatePath(Vector3 sourcePosition, Vector3 targetPosition, int areaMask, NavMeshPath path)
        {
            return false; // stub: no NavMesh, the bridge falls back to straight-line distances
        }
    }
}
