using System.Text.Json;
using Concord.Lab.Scheduling;

namespace Concord.Lab.Chaos;

/// <summary>
/// Injects store faults into the calls of a scheduled run, as decisions of the schedule (seeded, recorded, replayed,
/// shrunk): virtual latency, transient failures before apply, applied writes whose reply is lost (outcome unknown),
/// duplicate delivery of mutations, and backend restarts (an outage window during which every call fails transiently;
/// acknowledged writes survive). Agent faults (crash, pause) and clock skew are injected by the scheduler itself.
/// </summary>
/// <remarks>
/// Put it under a <see cref="ScheduledStore"/>: <c>new ScheduledStore(new ChaosStore(engine, scheduler), scheduler)</c>,
/// so a fault happens after the scheduling point of the call. Calls outside agent code pass straight through.
/// Disposing does not dispose the inner store.
/// </remarks>
public sealed class ChaosStore : IConcordStore
{
    private readonly IConcordStore _inner;
    private readonly ControlledScheduler _scheduler;

    /// <summary>Wraps <paramref name="inner"/>, injecting the faults of <paramref name="scheduler"/>'s <see cref="ControlledScheduler.Chaos"/>.</summary>
    public ChaosStore(IConcordStore inner, ControlledScheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(scheduler);
        _inner = inner;
        _scheduler = scheduler;
    }

    /// <inheritdoc />
    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) =>
        Call(false, "revision", () => _inner.GetRevisionAsync(cancellationToken), r => $"rev {r}", cancellationToken);

    /// <inheritdoc />
    public ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default) =>
        Call(false, options?.AtRevision is { } at ? $"get {key} @rev {at}" : $"get {key}", () => _inner.GetAsync(ns, key, options, cancellationToken), ScheduledStore.Describe, cancellationToken);

    /// <inheritdoc />
    public ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default) =>
        Call(false, $"list {request?.Prefix}*", () => _inner.ListAsync(ns, request!, cancellationToken), r => $"{r.Records.Count} records", cancellationToken);

    /// <inheritdoc />
    public ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        Call(true, ScheduledStore.Label("put", key, options), () => _inner.PutAsync(ns, key, value, options, cancellationToken), ScheduledStore.Describe, cancellationToken);

    /// <inheritdoc />
    public ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        Call(true, ScheduledStore.Label("delete", key, options), () => _inner.DeleteAsync(ns, key, options, cancellationToken), ScheduledStore.Describe, cancellationToken);

    /// <inheritdoc />
    public ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        Call(true, $"patch {key} {ScheduledStore.Describe(patch)} {ScheduledStore.Describe(options)}".TrimEnd(), () => _inner.PatchAsync(ns, key, patch, options, cancellationToken), ScheduledStore.Describe, cancellationToken);

    /// <inheritdoc />
    public ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        Call(IsMutation(request), ScheduledStore.Describe(request, options), () => _inner.TransactAsync(ns, request, options, cancellationToken), ScheduledStore.Describe, cancellationToken);

    /// <inheritdoc />
    public IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, CancellationToken cancellationToken = default) =>
        _inner.WatchAsync(ns, request, cancellationToken);

    /// <summary>Does nothing: the inner store belongs to the caller.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static bool IsMutation(TxnRequest? request) =>
        request is not null && request.Then.Concat(request.Else).Any(o => o.Kind != TxnOpKind.Get);

    private async ValueTask<T> Call<T>(bool mutation, string operation, Func<ValueTask<T>> call, Func<T, string> describe, CancellationToken cancellationToken)
    {
        var agent = _scheduler.RunningAgent();
        if (agent is null) return await call().ConfigureAwait(false);
        var chaos = _scheduler.Chaos;
        if (_scheduler.Clock.Elapsed < _scheduler.StoreDownUntil)
        {
            var left = _scheduler.StoreDownUntil - _scheduler.Clock.Elapsed;
            throw new StoreUnavailableException($"The backend is restarting (injected; back in {ScheduleTrace.FormatTime(left)})", isTransient: true);
        }

        switch (_scheduler.DecideStoreFault(agent, operation, mutation))
        {
            case FaultKind.Latency:
            {
                var ms = _scheduler.Draw((int)chaos.LatencyMin.TotalMilliseconds, (int)chaos.LatencyMax.TotalMilliseconds, agent);
                _scheduler.RecordFault(agent, $"latency {ms} ms");
                agent.SleepLabel = $"reply after {ms} ms latency";
                await Task.Delay(TimeSpan.FromMilliseconds(ms), agent.Clock, cancellationToken).ConfigureAwait(false);
                return await call().ConfigureAwait(false);
            }
            case FaultKind.TransientFailure:
                _scheduler.RecordFault(agent, "transient failure (not applied)");
                throw new InjectedFaultException(FaultKind.TransientFailure, operation, applied: false);
            case FaultKind.UnknownOutcome:
            {
                var result = await call().ConfigureAwait(false);
                _scheduler.RecordFault(agent, $"reply lost (store answered: {describe(result)})");
                throw new InjectedFaultException(FaultKind.UnknownOutcome, operation, applied: true);
            }
            case FaultKind.DuplicateDelivery:
            {
                var first = await call().ConfigureAwait(false);
                var second = await call().ConfigureAwait(false);
                _scheduler.RecordFault(agent, $"delivered twice (2nd: {describe(second)})");
                return first;
            }
            case FaultKind.BackendRestart:
            {
                _scheduler.StoreDownUntil = _scheduler.Clock.Elapsed + chaos.RestartDowntime;
                _scheduler.RecordFault(agent, $"backend restart ({ScheduleTrace.FormatTime(chaos.RestartDowntime)} down; not applied)");
                throw new StoreUnavailableException("The backend restarted during the call (injected); it was not applied", isTransient: true);
            }
            default:
                return await call().ConfigureAwait(false);
        }
    }
}
