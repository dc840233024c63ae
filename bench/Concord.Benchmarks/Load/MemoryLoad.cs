using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Concord.Engine;

namespace Concord.Benchmarks.Load;

/// <summary>
/// Managed heap per small key: GC.GetTotalMemory after a forced full collection, before and after inserting N keys
/// <c>key/0000000</c> … with values <c>{"n":i}</c>. The peer is a <c>ConcurrentDictionary&lt;string, byte[]&gt;</c> of the same
/// key strings and JSON bytes: the least any in-process key-value map can hold.
/// </summary>
internal static class MemoryLoad
{
    private const string Ns = "bench";

    public static IEnumerable<Comparison> Run(LoadSettings settings, Action<string> log)
    {
        var n = settings.MemoryKeys;
        var concord = new List<double>();
        var peer = new List<double>();
        for (var run = 0; run < settings.Runs; run++)
        {
            concord.Add(MeasureConcord(n));
            peer.Add(MeasureDictionary(n));
            log($"memory {n:N0} keys run {run + 1}: concord {concord[^1]:N0} B/key, dictionary {peer[^1]:N0} B/key");
        }
        yield return new Comparison("memory", $"{n:N0} keys like {{\"n\":i}}", "bytes/key", false,
            new Sample("Concord memory engine (PutAsync of a parsed JsonDocument's root)", [.. concord], []),
            new Sample("ConcurrentDictionary<string, byte[]> of the same UTF-8 JSON", [.. peer], []));
    }

    private static double MeasureConcord(int n)
    {
        var before = HeapAfterFullCollection();
        var engine = ConcordEngine.CreateInMemory();
        for (var i = 0; i < n; i++)
        {
            // What a server does with a request body: parse, hand the element over, dispose; the engine keeps its own copy.
            using var document = JsonDocument.Parse(Json(i));
            ContentionLoad.Sync(engine.PutAsync(Ns, Key(i), document.RootElement));
        }
        var after = HeapAfterFullCollection();
        GC.KeepAlive(engine);
        engine.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return (after - before) / (double)n;
    }

    private static double MeasureDictionary(int n)
    {
        var before = HeapAfterFullCollection();
        var dictionary = new ConcurrentDictionary<string, byte[]>(StringComparer.Ordinal);
        for (var i = 0; i < n; i++) dictionary[Key(i)] = Json(i);
        var after = HeapAfterFullCollection();
        GC.KeepAlive(dictionary);
        return (after - before) / (double)n;
    }

    private static string Key(int i) => $"key/{i:D7}";

    private static byte[] Json(int i) => Encoding.UTF8.GetBytes($$"""{"n":{{i}}}""");

    private static long HeapAfterFullCollection()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
