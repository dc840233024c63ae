using System.Diagnostics;
using System.Text.Json;

namespace Concord.Diagnostics;

/// <summary>
/// Wraps any <see cref="IConcordStore"/> with a span and metrics per operation (namespace, key, expected and actual
/// version, conflict, fencing token, agent). Costs almost nothing when nobody listens.
/// </summary>
public sealed class InstrumentedStore : IConcordStore
{
    private readonly IConcordStore _inner;
    private readonly TimeProvider _time;

    /// <summary>Wraps <paramref name="inner"/>; disposing this disposes it.</summary>
    public InstrumentedStore(IConcordStore inner, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The wrapped store.</summary>
    public IConcordStore Inner => _inner;

    /// <inheritdoc />
    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) => _inner.GetRevisionAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default)
    {
        var start = _time.GetTimestamp();
        using var activity = Start("get", ns, key, null);
        try
        {
            var record = await _inner.GetAsync(ns, key, options, cancellationToken).ConfigureAwait(false);
            if (activity is not null)
            {
                activity.SetTag(ConcordTelemetry.Tags.Version, record?.Version ?? 0);
                if (record is not null) activity.SetTag(ConcordTelemetry.Tags.Revision, record.Revision);
                TagCausal(activity, record);
            }
            Record("get", "read", start);
            return record;
        }
        catch (Exception e)
        {
            Fail(activity, "get", start, e);
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default)
    {
        var start = _time.GetTimestamp();
        using var activity = Start("list", ns, request.Prefix, null);
        try
        {
            var page = await _inner.ListAsync(ns, request, cancellationToken).ConfigureAwait(false);
            activity?.SetTag(ConcordTelemetry.Tags.Revision, page.Revision);
            Record("list", "read", start);
            return page;
        }
        catch (Exception e)
        {
            Fail(activity, "list", start, e);
            throw;
        }
    }

    /// <inheritdoc />
    public ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        WriteAsync("put", ns, key, options, () => _inner.PutAsync(ns, key, value, options, cancellationToken));

    /// <inheritdoc />
    public ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        WriteAsync("delete", ns, key, options, () => _inner.DeleteAsync(ns, key, options, cancellationToken));

    /// <inheritdoc />
    public ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        WriteAsync("patch", ns, key, options, () => _inner.PatchAsync(ns, key, patch, options, cancellationToken));

    private async ValueTask<WriteResult> WriteAsync(string op, string ns, string key, WriteOptions? options, Func<ValueTask<WriteResult>> call)
    {
        var start = _time.GetTimestamp();
        using var activity = Start(op, ns, key, options);
        try
        {
            var result = await call().ConfigureAwait(false);
            if (activity is not null)
            {
                activity.SetTag(ConcordTelemetry.Tags.Version, result.Version);
                activity.SetTag(ConcordTelemetry.Tags.Revision, result.Revision);
                if (result.Replayed) activity.SetTag(ConcordTelemetry.Tags.Replayed, true);
                TagCausal(activity, result.Record);
                if (!result.IsApplied)
                {
                    activity.SetTag(ConcordTelemetry.Tags.Conflict, result.Conflict.ToString());
                    activity.SetStatus(ActivityStatusCode.Unset, result.Message);
                    activity.AddEvent(new ActivityEvent("concord.conflict", tags: new ActivityTagsCollection
                    {
                        [ConcordTelemetry.Tags.Conflict] = result.Conflict.ToString(),
                        ["concord.current_writer"] = result.Record?.Writer,
                        [ConcordTelemetry.Tags.Version] = result.Version,
                    }));
                }
            }
            if (result.Replayed) ConcordTelemetry.IdempotentReplays.Add(1, new KeyValuePair<string, object?>(ConcordTelemetry.Tags.Operation, op));
            if (!result.IsApplied) ConcordTelemetry.Conflicts.Add(1, new KeyValuePair<string, object?>(ConcordTelemetry.Tags.Conflict, result.Conflict.ToString()));
            Record(op, result.IsApplied ? "applied" : "conflict", start);
            return result;
        }
        catch (Exception e)
        {
            Fail(activity, op, start, e);
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        var start = _time.GetTimestamp();
        using var activity = Start("txn", ns, null, options);
        activity?.SetTag("concord.txn.compares", request.Compares.Count);
        activity?.SetTag("concord.txn.operations", request.Then.Count + request.Else.Count);
        try
        {
            var result = await _inner.TransactAsync(ns, request, options, cancellationToken).ConfigureAwait(false);
            if (activity is not null)
            {
                activity.SetTag(ConcordTelemetry.Tags.Revision, result.Revision);
                activity.SetTag("concord.txn.succeeded", result.Succeeded);
                if (result.Conflict is { } c)
                {
                    activity.SetTag(ConcordTelemetry.Tags.Conflict, c.Conflict.ToString());
                    activity.SetTag(ConcordTelemetry.Tags.Key, c.Key);
                }
            }
            if (result.Replayed) ConcordTelemetry.IdempotentReplays.Add(1, new KeyValuePair<string, object?>(ConcordTelemetry.Tags.Operation, "txn"));
            if (result.Conflict is { } conflict) ConcordTelemetry.Conflicts.Add(1, new KeyValuePair<string, object?>(ConcordTelemetry.Tags.Conflict, conflict.Conflict.ToString()));
            else if (!result.Succeeded) ConcordTelemetry.Conflicts.Add(1, new KeyValuePair<string, object?>(ConcordTelemetry.Tags.Conflict, "compareFailed"));
            Record("txn", result.IsApplied && result.Succeeded ? "applied" : "conflict", start);
            return result;
        }
        catch (Exception e)
        {
            Fail(activity, "txn", start, e);
            throw;
        }
    }

    /// <inheritdoc />
    /// <remarks>The span covers opening the watch; the inner store's eager validation errors surface unchanged.</remarks>
    public IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, CancellationToken cancellationToken = default)
    {
        var start = _time.GetTimestamp();
        using var activity = Start("watch", ns, request.Key ?? request.Prefix, null);
        activity?.SetTag("concord.watch.from_revision", request.FromRevision);
        try
        {
            return _inner.WatchAsync(ns, request, cancellationToken);
        }
        catch (Exception e)
        {
            Fail(activity, "watch", start, e);
            throw;
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _inner.DisposeAsync();

    private static Activity? Start(string op, string ns, string? key, WriteOptions? options)
    {
        var activity = ConcordTelemetry.ActivitySource.StartActivity("concord." + op, ActivityKind.Client);
        if (activity is null) return null;
        activity.SetTag(ConcordTelemetry.Tags.Operation, op);
        activity.SetTag(ConcordTelemetry.Tags.Namespace, ns);
        if (key is not null) activity.SetTag(ConcordTelemetry.Tags.Key, key);
        if (options is not null)
        {
            if (options.Agent is { } agent)
            {
                activity.SetTag(ConcordTelemetry.Tags.AgentId, agent);
                activity.SetTag(ConcordTelemetry.Tags.AgentName, agent);
            }
            if (options.Expect.Kind == ExpectationKind.Version) activity.SetTag(ConcordTelemetry.Tags.ExpectedVersion, options.Expect.Version);
            else if (options.Expect.Kind != ExpectationKind.Any) activity.SetTag("concord.expectation", options.Expect.ToString());
            if (options.Expect.Fence is { } fence)
            {
                activity.SetTag(ConcordTelemetry.Tags.FenceLock, fence.Lock);
                activity.SetTag(ConcordTelemetry.Tags.FenceToken, fence.Token);
            }
            if (options.IdempotencyKey is not null) activity.SetTag("concord.idempotency_key.present", true);
            if (options.Context is { } context) activity.SetTag(ConcordTelemetry.Tags.CausalContextSent, context.ToString());
        }
        return activity;
    }

    /// <summary>The causal stamp of the version read or written (or, on a conflict, of the current version).</summary>
    private static void TagCausal(Activity activity, ConcordRecord? record)
    {
        if (record?.Causal is not { } causal) return;
        activity.SetTag(ConcordTelemetry.Tags.CausalDot, causal.Dot.ToString());
        activity.SetTag(ConcordTelemetry.Tags.CausalContext, causal.Context.ToString());
        if (causal.Concurrent) activity.SetTag(ConcordTelemetry.Tags.CausalConcurrent, true);
    }

    private void Record(string op, string outcome, long start)
    {
        var tags = new TagList { { ConcordTelemetry.Tags.Operation, op }, { ConcordTelemetry.Tags.Outcome, outcome } };
        ConcordTelemetry.Operations.Add(1, tags);
        if (ConcordTelemetry.Duration.Enabled) ConcordTelemetry.Duration.Record(_time.GetElapsedTime(start).TotalSeconds, tags);
    }

    private void Fail(Activity? activity, string op, long start, Exception e)
    {
        activity?.SetStatus(ActivityStatusCode.Error, e.Message);
        activity?.AddException(e);
        Record(op, "error", start);
    }
}
