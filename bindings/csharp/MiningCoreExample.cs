// How a Mining Core BTQ pool would use btq-kit, doubling as the C# test (exit code 1 on failure):
// validate a miner's address, validate a share, build and sign a consolidation from listunspent.
// Usage: mono MiningCoreExample.exe TX_HEX_FILE GBT_JSON_FILE
using System;
using System.Diagnostics;
using System.IO;
using System.Text;
using BtqKit;

public static class MiningCoreExample
{
    static int failures;

    static void Check(bool ok, string what)
    {
        if (!ok) { failures++; Console.Error.WriteLine("check failed: " + what); }
    }

    static string Field(string json, string key)
    {
        string pat = "\"" + key + "\":\"";
        int i = json.IndexOf(pat, StringComparison.Ordinal);
        if (i < 0) return null;
        i += pat.Length;
        return json.Substring(i, json.IndexOf('"', i) - i);
    }

    static byte[] Hex(string s)
    {
        var b = new byte[s.Length / 2];
        for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(s.Substring(2 * i, 2), 16);
        return b;
    }

    public static int Main(string[] args)
    {
        string txHex = File.ReadAllText(args[0]).Trim();
        string gbt = File.ReadAllText(args[1]);
        Console.WriteLine("btq-kit " + Btq.Version());

        // 1. A miner connects with an address as username: validate it without the node.
        Check(Btq.IsValidAddress("qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q58", "main"), "valid address");
        Check(!Btq.IsValidAddress("qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q59", "main"), "bad checksum");
        Check(!Btq.IsValidAddress("tbtq1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tghpepam", "main"), "wrong network");
        Console.WriteLine(Btq.ValidateAddressJson("qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q58", "main"));
        try { Btq.IsValidAddress("x", "moon"); Check(false, "unknown network throws"); }
        catch (BtqException e) { Check(e.Status == 1 && e.Message.Contains("moon"), "network error: " + e.Message); }

        // Decoding
        using (var tx = new Transaction(Hex(txHex)))
        {
            Check(tx.Txid == "e30932fafdb3e3dab09b692f3bc86d16be3eadda11050f7b957548d7507e9e1e", "txid");
            Check(tx.Weight == 5054 && tx.VSize == 316, "weight/vsize");
        }
        try { new Transaction(new byte[] { 1, 2, 3 }); Check(false, "bad tx throws"); }
        catch (BtqException e) { Check(e.Status == 2, "decode error: " + e.Message); Console.WriteLine("expected: " + e.Message); }

        var seed = new byte[32];
        for (int i = 0; i < 32; i++) seed[i] = (byte)i;
        using (var key = LithiumKeypair.FromSeed(seed))
        {
            string poolAddr = key.Address("regtest");
            // 2. A share arrives: validate it against the job built from getblocktemplate.
            using (var pool = new Pool(poolAddr, "regtest"))
            {
                string job = pool.AddTemplate(gbt);
                string jobId = Field(job, "job_id");
                string r = pool.ValidateShare("miner.rig", "00000001", 1e-6, 0, "ffff", "00000002", "6b054a12", "00000000", null, 1795508800);
                Check(r.Contains("\"accepted\":false") && r.Contains("\"code\":21"), "unknown job rejected");
                bool accepted = false;
                for (int n = 0; n < 64 && !accepted; n++)
                {
                    r = pool.ValidateShare("miner.rig", "00000001", 1e-6, 0, jobId, "00000002", "6b054a12", n.ToString("x8"), null, 1795508800);
                    accepted = r.Contains("\"accepted\":true");
                }
                Check(accepted, "a share is accepted");
                try { pool.AddTemplate("{}"); Check(false, "bad template throws"); }
                catch (BtqException e) { Check(e.Status == 7, "pool error: " + e.Message); }

                var sw = Stopwatch.StartNew();
                const int M = 20000;
                for (int i = 0; i < M; i++)
                    pool.ValidateShare("miner.rig", "00000001", 1e-6, 0, jobId, "00000003", "6b054a12", (i + 1000).ToString("x8"), null, 1795508800);
                double shareUs = sw.Elapsed.TotalMilliseconds * 1000.0 / M;
                var small = new byte[32];
                sw = Stopwatch.StartNew();
                const int N = 1000000;
                for (int i = 0; i < N; i++) Btq.BytesLen(small);
                double callNs = sw.Elapsed.TotalMilliseconds * 1e6 / N;
                Console.WriteLine("C#: trivial call {0:F1} ns; ValidateShare {1:F2} us", callNs, shareUs);
            }

            // 3. Consolidate the pool's coinbase outputs from listunspent and sign.
            var sb = new StringBuilder("[");
            for (int i = 0; i < 3; i++)
            {
                if (i > 0) sb.Append(',');
                sb.Append("{\"txid\":\"" + (i + 1).ToString("x64") + "\",\"vout\":0,\"scriptPubKey\":\"00144006068b71b291a07284b6fd3b5ba5794d7b1568\",\"amount\":\"0.5\",\"confirmations\":150}");
            }
            sb.Append(']');
            string plan = Btq.Consolidate(sb.ToString(), key, poolAddr, "regtest", 1);
            Check(plan.Contains("\"inputs\":3"), "consolidation of 3 inputs");
            Console.WriteLine("consolidation txid " + Field(plan, "txid"));
            try { Btq.Consolidate("[{]", key, poolAddr, "regtest", 1); Check(false, "bad JSON throws"); }
            catch (BtqException e) { Check(e.Status == 8, "payout error: " + e.Message); }
        }
        try { LithiumKeypair.FromNodeKeypair(new byte[10]); Check(false, "bad node key throws"); }
        catch (BtqException e) { Check(e.Status == 4, "key error: " + e.Message); }

        if (failures > 0) { Console.Error.WriteLine("FAILED"); return 1; }
        Console.WriteLine("all C# checks passed");
        return 0;
    }
}
