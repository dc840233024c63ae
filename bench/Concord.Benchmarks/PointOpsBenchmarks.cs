using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Concord.Engine;

namespace Concord.Benchmarks;

/// <summary>
/// Uncontended point operations on the memory engine against <see cref="ConcurrentDictionary{TKey, TValue}"/>,
/// the floor for any in-process map. Each category has the dictionary operation as its baseline, so the Ratio
/// column reads "how many times slower than the dictionary".
/// </summary>
/// <remarks>
/// Operations rotate over 1,024 pre-populated keys. The engine's calls complete synchronously in memory mode,
/// so they are consumed without an await (an await would only add BenchmarkDotNet's own overhead).
/// </remarks>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class PointOpsBenchmarks
{
    public const string GetCategory = "Get";
    public const string PutCategory = "CasPut";
    public const string PatchCategory = "PatchIncrement";
    private const string Ns = "bench";
    private const int KeyCount = 1024;

    private readonly string[] _keys = Enumerable.Range(0, KeyCount).Select(i => $"item/{i:D4}").ToArray();
    private readonly long[] _versions = new long[KeyCount];
    private readonly byte[] _bytes = Encoding.UTF8.GetBytes("""{"n":1}""");
    private readonly JsonPatch _increment = JsonPatch.Create().Increment("/n").Build();
    private ConcurrentDictionary<string, StoredValue> _dictionary = null!;
    private ConcurrentDictionary<string, long> _counters = null!;
    private ConcordEngine _engine = null!;
    private JsonElement _value;
    private int _next;

    /// <summary>Engine retention; the default is the engine's. The spin command overrides it to show what MVCC retention costs.</summary>
    public long RetainedRevisions { get; set; } = new ConcordEngineOptions().RetainedRevisions;

    [GlobalSetup]
    public void Setup()
    {
        _value = JsonDocument.Parse(_bytes).RootElement.Clone();
        _dictionary = new ConcurrentDictionary<string, StoredValue>(StringComparer.Ordinal);
        _counters = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        _engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { RetainedRevisions = RetainedRevisions });
        for (var i = 0; i < KeyCount; i++)
        {
            _dictionary[_keys[i]] = new StoredValue(1, _bytes);
            _counters[_keys[i]] = 1;
            _versions[i] = Sync(_engine.PutAsync(Ns, _keys[i], _value)).Version;
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _engine.DisposeAsync().AsTask().GetAwaiter().GetResult();

    private int NextIndex() => _next++ & (KeyCount - 1);

    // ------------------------------------------------------------------ get

    [Benchmark(Baseline = true), BenchmarkCategory(GetCategory)]
    public StoredValue? Get_ConcurrentDictionary_TryGetValue()
    {
        _dictionary.TryGetValue(_keys[NextIndex()], out var value);
        return value;
    }

    [Benchmark, BenchmarkCategory(GetCategory)]
    public ConcordRecord? Get_Concord_GetAsync() => Sync(_engine.GetAsync(Ns, _keys[NextIndex()]));

    // ------------------------------------------------------------------ compare-and-swap put

    [Benchmark(Baseline = true), BenchmarkCategory(PutCategory)]
    public StoredValue Put_ConcurrentDictionary_AddOrUpdate() =>
        _dictionary.AddOrUpdate(_keys[NextIndex()], static (_, bytes) => new StoredValue(1, bytes),
            static (_, old, bytes) => new StoredValue(old.Version + 1, bytes), _bytes);

    [Benchmark, BenchmarkCategory(PutCategory)]
    public bool Put_ConcurrentDictionary_TryUpdate()
    {
        var key = _keys[NextIndex()];
        _dictionary.TryGetValue(key, out var current);
        return _dictionary.TryUpdate(key, new StoredValue(current!.Version + 1, _bytes), current);
    }

    [Benchmark, BenchmarkCategory(PutCategory)]
    public WriteResult Put_Concord_PutAsync_ExpectVersion()
    {
        var i = NextIndex();
        var result = Sync(_engine.PutAsync(Ns, _keys[i], _value, new WriteOptions { Expect = Expect.Version(_versions[i]) }));
        _versions[i] = result.Version;
        return result;
    }

    // ------------------------------------------------------------------ patch increment

    [Benchmark(Baseline = true), BenchmarkCategory(PatchCategory)]
    public long Patch_ConcurrentDictionary_AddOrUpdate() =>
        _counters.AddOrUpdate(_keys[NextIndex()], 1, static (_, n) => n + 1);

    [Benchmark, BenchmarkCategory(PatchCategory)]
    public WriteResult Patch_Concord_PatchAsync_Increment()
    {
        var i = NextIndex();
        var result = Sync(_engine.PatchAsync(Ns, _keys[i], _increment));
        _versions[i] = result.Version;
        return result;
    }

    private static T Sync<T>(ValueTask<T> pending) =>
        pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
}

/// <summary>What the dictionary peer stores: a version and the JSON bytes, the minimum a versioned store keeps.</summary>
public sealed record StoredValue(long Version, byte[] Json);
