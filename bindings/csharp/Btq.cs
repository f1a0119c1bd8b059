// btq-kit for C#: a thin P/Invoke layer over the C ABI (bindings/c/btq.h).
// C# 7.2: compiles with Mono's mcs and with .NET 6/8 (Mining Core).
using System;
using System.Runtime.InteropServices;
using System.Text;

namespace BtqKit
{
    /// <summary>An error from btq-kit: the C status code and the library's last-error message.</summary>
    public sealed class BtqException : Exception
    {
        public int Status { get; }
        public BtqException(int status, string message) : base(message) { Status = status; }
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct BtqBuffer
    {
        public IntPtr Data;
        public UIntPtr Len;
        public UIntPtr Capacity;
    }

    internal static class Native
    {
        internal const string Lib = "btq_ffi";

        [DllImport(Lib)] internal static extern int btq_last_error_message(byte[] buf, UIntPtr len, out UIntPtr required);
        [DllImport(Lib)] internal static extern void btq_buffer_free(ref BtqBuffer buf);
        [DllImport(Lib)] internal static extern int btq_version(out BtqBuffer outBuf);
        [DllImport(Lib)] internal static extern int btq_bytes_len(byte[] data, UIntPtr len, out ulong result);
        [DllImport(Lib)] internal static extern int btq_tx_decode(byte[] bytes, UIntPtr len, out TxHandle tx);
        [DllImport(Lib)] internal static extern void btq_tx_free(IntPtr tx);
        [DllImport(Lib)] internal static extern int btq_tx_txid(TxHandle tx, byte[] buf, UIntPtr len, out UIntPtr required);
        [DllImport(Lib)] internal static extern int btq_tx_weight(TxHandle tx, out ulong w);
        [DllImport(Lib)] internal static extern int btq_tx_vsize(TxHandle tx, out ulong v);
        [DllImport(Lib)] internal static extern int btq_address_validate(byte[] address, byte[] network, out BtqBuffer outBuf);
        [DllImport(Lib)] internal static extern int btq_address_is_valid(byte[] address, byte[] network, out int valid);
        [DllImport(Lib)] internal static extern int btq_keypair_from_seed(byte[] seed, UIntPtr len, out KeypairHandle key);
        [DllImport(Lib)] internal static extern int btq_keypair_from_node(byte[] bytes, UIntPtr len, out KeypairHandle key);
        [DllImport(Lib)] internal static extern void btq_keypair_free(IntPtr key);
        [DllImport(Lib)] internal static extern int btq_keypair_address(KeypairHandle key, byte[] network, out BtqBuffer outBuf);
        [DllImport(Lib)] internal static extern int btq_pool_new(byte[] address, byte[] network, out PoolHandle pool);
        [DllImport(Lib)] internal static extern void btq_pool_free(IntPtr pool);
        [DllImport(Lib)] internal static extern int btq_pool_add_template(PoolHandle pool, byte[] json, out BtqBuffer outBuf);
        [DllImport(Lib)] internal static extern int btq_pool_validate_share(PoolHandle pool, byte[] worker, byte[] en1,
            double difficulty, uint versionMask, byte[] jobId, byte[] en2, byte[] ntime, byte[] nonce, byte[] versionBits,
            ulong nowSecs, out BtqBuffer outBuf);
        [DllImport(Lib)] internal static extern int btq_consolidate(byte[] utxos, KeypairHandle key, byte[] dest,
            byte[] network, ulong feerate, out BtqBuffer outBuf);

        internal static byte[] Str(string s)
        {
            if (s == null) return null;
            return Encoding.UTF8.GetBytes(s + "\0");
        }

        internal static string LastError()
        {
            UIntPtr need;
            btq_last_error_message(null, UIntPtr.Zero, out need);
            var buf = new byte[(int)need.ToUInt32()];
            btq_last_error_message(buf, (UIntPtr)buf.Length, out need);
            return Encoding.UTF8.GetString(buf, 0, Math.Max(0, buf.Length - 1));
        }

        internal static void Check(int status)
        {
            if (status != 0) throw new BtqException(status, LastError());
        }

        internal static string TakeString(int status, ref BtqBuffer buf)
        {
            Check(status);
            try
            {
                var bytes = new byte[(int)buf.Len.ToUInt32()];
                Marshal.Copy(buf.Data, bytes, 0, bytes.Length);
                return Encoding.UTF8.GetString(bytes);
            }
            finally { btq_buffer_free(ref buf); }
        }
    }

    public sealed class TxHandle : SafeHandle
    {
        public TxHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { Native.btq_tx_free(handle); return true; }
    }

    public sealed class KeypairHandle : SafeHandle
    {
        public KeypairHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { Native.btq_keypair_free(handle); return true; }
    }

    public sealed class PoolHandle : SafeHandle
    {
        public PoolHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { Native.btq_pool_free(handle); return true; }
    }

    public static class Btq
    {
        public static string Version()
        {
            BtqBuffer b;
            int st = Native.btq_version(out b);
            return Native.TakeString(st, ref b);
        }

        public static ulong BytesLen(byte[] data)
        {
            ulong n;
            Native.Check(Native.btq_bytes_len(data, (UIntPtr)data.Length, out n));
            return n;
        }

        /// <summary>The node's validateaddress answer (JSON), without a node round trip.</summary>
        public static string ValidateAddressJson(string address, string network)
        {
            BtqBuffer b;
            int st = Native.btq_address_validate(Native.Str(address), Native.Str(network), out b);
            return Native.TakeString(st, ref b);
        }

        public static bool IsValidAddress(string address, string network)
        {
            int v;
            Native.Check(Native.btq_address_is_valid(Native.Str(address), Native.Str(network), out v));
            return v == 1;
        }

        /// <summary>Plans and signs the consolidation of listunspent JSON; returns JSON (txs with hex).</summary>
        public static string Consolidate(string listUnspentJson, LithiumKeypair key, string destAddress, string network, ulong feerate)
        {
            BtqBuffer b;
            int st = Native.btq_consolidate(Native.Str(listUnspentJson), key.Handle, Native.Str(destAddress),
                Native.Str(network), feerate, out b);
            return Native.TakeString(st, ref b);
        }
    }

    public sealed class Transaction : IDisposable
    {
        private readonly TxHandle h;
        public Transaction(byte[] bytes)
        {
            Native.Check(Native.btq_tx_decode(bytes, (UIntPtr)bytes.Length, out h));
        }
        public string Txid
        {
            get
            {
                var buf = new byte[65];
                UIntPtr need;
                Native.Check(Native.btq_tx_txid(h, buf, (UIntPtr)buf.Length, out need));
                return Encoding.ASCII.GetString(buf, 0, 64);
            }
        }
        public ulong Weight { get { ulong w; Native.Check(Native.btq_tx_weight(h, out w)); return w; } }
        public ulong VSize { get { ulong v; Native.Check(Native.btq_tx_vsize(h, out v)); return v; } }
        public void Dispose() { h.Dispose(); }
    }

    public sealed class LithiumKeypair : IDisposable
    {
        internal readonly KeypairHandle Handle;
        private LithiumKeypair(KeypairHandle h) { Handle = h; }
        public static LithiumKeypair FromSeed(byte[] seed)
        {
            KeypairHandle h;
            Native.Check(Native.btq_keypair_from_seed(seed, (UIntPtr)seed.Length, out h));
            return new LithiumKeypair(h);
        }
        public static LithiumKeypair FromNodeKeypair(byte[] bytes)
        {
            KeypairHandle h;
            Native.Check(Native.btq_keypair_from_node(bytes, (UIntPtr)bytes.Length, out h));
            return new LithiumKeypair(h);
        }
        public string Address(string network)
        {
            BtqBuffer b;
            int st = Native.btq_keypair_address(Handle, Native.Str(network), out b);
            return Native.TakeString(st, ref b);
        }
        public void Dispose() { Handle.Dispose(); }
    }

    /// <summary>Jobs from getblocktemplate and share validation (thread-safe).</summary>
    public sealed class Pool : IDisposable
    {
        private readonly PoolHandle h;
        public Pool(string payoutAddress, string network)
        {
            Native.Check(Native.btq_pool_new(Native.Str(payoutAddress), Native.Str(network), out h));
        }
        public string AddTemplate(string gbtJson)
        {
            BtqBuffer b;
            int st = Native.btq_pool_add_template(h, Native.Str(gbtJson), out b);
            return Native.TakeString(st, ref b);
        }
        public string ValidateShare(string worker, string extranonce1, double difficulty, uint versionMask,
            string jobId, string extranonce2, string ntime, string nonce, string versionBits, ulong nowSecs)
        {
            BtqBuffer b;
            int st = Native.btq_pool_validate_share(h, Native.Str(worker), Native.Str(extranonce1), difficulty,
                versionMask, Native.Str(jobId), Native.Str(extranonce2), Native.Str(ntime), Native.Str(nonce),
                Native.Str(versionBits), nowSecs, out b);
            return Native.TakeString(st, ref b);
        }
        public void Dispose() { h.Dispose(); }
    }
}
