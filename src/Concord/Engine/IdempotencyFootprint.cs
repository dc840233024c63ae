using System.Runtime.InteropServices;
using System.Text.Json;

namespace Concord.Engine;

/// <summary>
/// Counters of the embedded engine's idempotency records (see <see cref="ConcordEngineOptions.IdempotencyMemoryLimit"/>).
/// </summary>
/// <param name="Records">Records held (replayable or waiting for the sweeper).</param>
/// <param name="EstimatedBytes">Their estimated memory.</param>
/// <param name="EvictedEarly">Records forgotten before their retention ended, to stay within the memory limit.</param>
/// <param name="OldestStoredAt">When the oldest held record was stored: retries of writes older than this run again.</param>
/// <param name="LastEvictedStoredAt">When the most recently evicted record had been stored (null if none was evicted).</param>
public sealed record IdempotencyStats(int Records, long EstimatedBytes, long EvictedEarly, DateTimeOffset? OldestStoredAt, DateTimeOffset? LastEvictedStoredAt);

/// <summary>Estimates the memory an idempotency record keeps alive, for the engine's memory limit.</summary>
internal static class IdempotencyFootprint
{
    // Object headers and fields on 64-bit .NET: the entry, fingerprint array, result and its list, the dictionary and
    // queue slots (~200 bytes); per operation result and per record (~48 and ~160 bytes); then the strings and the value.
    // The soak (scripts/faults.sh --soak) checks that RSS levels off at the limit.
    private const int EntryOverhead = 200;
    private const int OpOverhead = 48;
    private const int RecordOverhead = 160;

    public static int Estimate(IdempotencyEntry entry)
    {
        long bytes = EntryOverhead + (2L * entry.Key.Length) + entry.Fingerprint.Length;
        foreach (var op in entry.Result.Results)
        {
            bytes += OpOverhead + (2L * op.Key.Length);
            if (op.Record is { } record)
            {
                bytes += RecordOverhead + (2L * (record.Writer?.Length ?? 0));
                if (record.Value.ValueKind != JsonValueKind.Undefined) bytes += JsonMarshal.GetRawUtf8Value(record.Value).Length;
            }
        }
        return (int)Math.Min(bytes, int.MaxValue);
    }
}
