using System.Globalization;
using System.Text.Json;

namespace Concord.Lab.Scheduling;

/// <summary>
/// Makes every store call a scheduling point: before the call reaches the wrapped store, the calling agent stops at a
/// point labelled with the operation (<c>put accounts/acct-42 expect v3</c>) and the scheduler decides who runs next.
/// The result is written into the run's trace (<c>ok v4</c>, <c>conflict: v5 is current</c>, <c>threw …</c>).
/// </summary>
/// <remarks>
/// Calls made outside agent code (scenario set-up and verification) pass straight through. Queues, streams and locks
/// built on <see cref="IConcordStore"/> (<c>StoreQueueService</c>, <c>StoreStreamService</c>, <c>StoreLockService</c>)
/// get a point per underlying store call. Watches cannot be scheduled (the engine delivers them on the thread pool):
/// <see cref="WatchAsync"/> throws <see cref="NotSupportedException"/> for agents. Disposing does not dispose the inner store.
/// </remarks>
public sealed class ScheduledStore : IConcordStore
{
    private readonly IConcordStore _inner;
    private readonly ControlledScheduler _scheduler;

    /// <summary>Wraps <paramref name="inner"/> (which must complete calls synchronously, as the memory engine does) for <paramref name="scheduler"/>'s agents.</summary>
    public ScheduledStore(IConcordStore inner, ControlledScheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(scheduler);
        _inner = inner;
        _scheduler = scheduler;
    }

    /// <summary>The wrapped store.</summary>
    public IConcordStore Inner => _inner;

    /// <inheritdoc />
    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) =>
        _scheduler.RunningAgent() is null
            ? _inner.GetRevisionAsync(cancellationToken)
            : Scheduled("revision", () => _inner.GetRevisionAsync(cancellationToken), r => $"rev {r}");

    /// <inheritdoc />
    public ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default) =>
        _scheduler.RunningAgent() is null
            ? _inner.GetAsync(ns, key, options, cancellationToken)
            : Scheduled(options?.AtRevision is { } at ? $"get {key} @rev {at}" : $"get {key}", () => _inner.GetAsync(ns, key, options, cancellationToken), Describe);

    /// <inheritdoc />
    public ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default) =>
        _scheduler.RunningAgent() is null
            ? _inner.ListAsync(ns, request, cancellationToken)
            : Scheduled($"list {request?.Prefix}*", () => _inner.ListAsync(ns, request!, cancellationToken),
                r => string.Create(CultureInfo.InvariantCulture, $"{r.Records.Count} records @rev {r.Revision}"));

    /// <inheritdoc />
    public ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        _scheduler.RunningAgent() is null
            ? _inner.PutAsync(ns, key, value, options, cancellationToken)
            : Scheduled(Label("put", key, options), () => _inner.PutAsync(ns, key, value, options, cancellationToken), Describe);

    /// <inheritdoc />
    public ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        _scheduler.RunningAgent() is null
            ? _inner.DeleteAsync(ns, key, options, cancellationToken)
            : Scheduled(Label("delete", key, options), () => _inner.DeleteAsync(ns, key, options, cancellationToken), Describe);

    /// <inheritdoc />
    public ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        _scheduler.RunningAgent() is null
            ? _inner.PatchAsync(ns, key, patch, options, cancellationToken)
            : Scheduled($"patch {key} {Describe(patch)} {Describe(options)}".TrimEnd(), () => _inner.PatchAsync(ns, key, patch, options, cancellationToken), Describe);

    /// <inheritdoc />
    public ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        _scheduler.RunningAgent() is null
            ? _inner.TransactAsync(ns, request, options, cancellationToken)
            : Scheduled(Describe(request, options), () => _inner.TransactAsync(ns, request, options, cancellationToken), Describe);

    /// <inheritdoc />
    /// <exception cref="NotSupportedException">Called by a scheduled agent: watch events are delivered on the thread pool, which the scheduler cannot control.</exception>
    public IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, CancellationToken cancellationToken = default)
    {
        if (_scheduler.RunningAgent() is { } agent)
        {
            throw new NotSupportedException($"agent {agent.Name}: watches cannot run under the controlled scheduler (the engine delivers changes on the thread pool); poll with GetAsync instead");
        }

        return _inner.WatchAsync(ns, request, cancellationToken);
    }

    /// <summary>Does nothing: the inner store belongs to the caller.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private async ValueTask<T> Scheduled<T>(string label, Func<ValueTask<T>> call, Func<T, string> describe)
    {
        var number = await _scheduler.EnterPointAsync(label).ConfigureAwait(false);
        var step = _scheduler.StepOf(number);
        try
        {
            var result = await call().ConfigureAwait(false);
            if (step is not null) ControlledScheduler.Annotate(step, describe(result));
            return result;
        }
        catch (Exception e) when (step is not null && e is not SchedulerEscapeException)
        {
            ControlledScheduler.Annotate(step, $"threw {e.GetType().Name}: {e.Message}");
            throw;
        }
    }

    internal static string Describe(ConcordRecord? record) =>
        record is null ? "absent" : record.IsDeleted ? $"deleted v{record.Version}" : $"v{record.Version} {Compact(record.Value)}";

    internal static string Describe(WriteResult result)
    {
        if (result.IsApplied) return $"ok v{result.Version}{(result.Replayed ? " (replayed)" : "")}";
        var current = result.Record is null ? "absent" : $"v{result.Record.Version} is current";
        return $"conflict {result.Conflict}: {current}{(result.Replayed ? " (replayed)" : "")}";
    }

    internal static string Describe(TxnResult result)
    {
        if (result.Conflict is { } conflict) return Describe(conflict);
        var writes = result.Results.Where(r => r.Kind != TxnOpKind.Get).Select(r => $"{r.Key} v{r.Record?.Version ?? 0}").ToList();
        var branch = result.Succeeded ? "then" : "else (compare failed)";
        return $"{branch} @rev {result.Revision}{(writes.Count > 0 ? ": " + string.Join(", ", writes) : "")}{(result.Replayed ? " (replayed)" : "")}";
    }

    internal static string Describe(WriteOptions? options)
    {
        var expect = options?.Expect ?? Expect.Any;
        var text = expect.Kind switch
        {
            ExpectationKind.Version => $"expect v{expect.Version}",
            ExpectationKind.Absent => "expect absent",
            ExpectationKind.Exists => "expect exists",
            _ => "",
        };
        if (expect.Fence is { } fence) text = (text + $" fence {fence.Lock}#{fence.Token}").Trim();
        if (options?.IdempotencyKey is { } idem) text += $" idem={idem}";
        return text;
    }

    /// <summary>"put k expect v3", "put k blind" (no expectation, no fence).</summary>
    internal static string Label(string verb, string key, WriteOptions? options)
    {
        var blind = (options?.Expect ?? Expect.Any).IsBlind ? "blind " : "";
        return $"{verb} {key} {blind}{Describe(options)}".TrimEnd();
    }

    internal static string Describe(JsonPatch patch) =>
        string.Join(", ", patch.Operations.Select(o => o.Value is null ? $"{JsonPatch.OpName(o.Op)} {o.Path}" : $"{JsonPatch.OpName(o.Op)} {o.Path} {o.Value.ToJsonString()}"));

    internal static string Describe(TxnRequest request, WriteOptions? options)
    {
        var ops = request.Then.Select(o => $"{o.Kind.ToString().ToLowerInvariant()} {o.Key}").ToList();
        var text = $"txn {request.Compares.Count} compares, then [{string.Join(", ", ops)}]";
        return options?.IdempotencyKey is { } idem ? text + $" idem={idem}" : text;
    }

    private static string Compact(JsonElement value) => ScheduleTrace.Shorten(value.ValueKind == JsonValueKind.Undefined ? "null" : value.GetRawText(), 48);
}
