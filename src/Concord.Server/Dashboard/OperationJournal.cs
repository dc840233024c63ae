using System.Text.Json;
using System.Threading.Channels;

namespace Concord.Server.Dashboard;

/// <summary>
/// A store decorator that records every operation the server performs for its clients — agent, operation, key,
/// expectation, outcome, versions, the writer it collided with, causal stamp, timestamps — into a bounded ring buffer,
/// and detects lost updates as they happen: a blind write (no version stated) that replaces versions its agent never
/// read. The dashboard draws the journal; <see cref="JournalHistory"/> turns it into a lab history for the checkers.
/// </summary>
/// <remarks>
/// <para>
/// Reads are attributed to the agent in <see cref="ReadOptions.Agent"/>, else to the ambient agent (the request's
/// <c>Concord-Agent</c> header). Reserved <c>_sys/</c> keys (locks, queues, streams) pass through unrecorded. The
/// journal does not own the inner store: disposing it does nothing.
/// </para>
/// <para>
/// Thread-safe. One lock (<c>_sync</c>) guards all state; under it the journal only updates dictionaries and writes to
/// subscriber channels with <c>TryWrite</c> (never blocks), and it never calls the inner store, so it cannot deadlock
/// with the store or with readers of the channels.
/// </para>
/// </remarks>
internal sealed class OperationJournal : IConcordStore
{
    private const string Reserved = "_sys/";
    private const int VersionsPerKey = 64;
    private const int MaxTrackedKeys = 200_000;
    private const int MaxAgentKeyStates = 400_000;
    private const int MaxObservedPerList = 1_000;
    private const int MaxLostListed = 20;

    private readonly IConcordStore _inner;
    private readonly TimeProvider _time;
    private readonly Func<string?> _ambientAgent;
    private readonly DashboardOptions _options;
    private readonly long _origin;
    private readonly Lock _sync = new();

    // Everything below is guarded by _sync.
    private readonly JournalEntry?[] _ring;
    private long _seq;
    private long _nextOpId;
    private double _evictedEnd;
    private readonly Dictionary<long, InFlight> _inFlight = [];
    private readonly Dictionary<(string Ns, string Key), KeyTrack> _keys = [];
    private readonly Dictionary<(string Ns, string Key, string Agent), AgentKeyState> _agentKeys = [];
    private readonly Dictionary<string, NamespaceStats> _namespaces = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Ns, string Agent), AgentStats> _agents = [];
    private readonly Dictionary<(string Ns, string Key), Baseline> _baselines = [];
    private readonly List<PendingLoss> _pendingLosses = [];
    private readonly List<(string Type, string Ns, object Payload)> _deferred = [];
    private readonly LinkedList<LostUpdateFinding> _findings = new();
    private readonly List<Subscriber> _subscribers = [];

    public OperationJournal(IConcordStore inner, DashboardOptions options, TimeProvider? timeProvider = null, Func<string?>? ambientAgent = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _inner = inner;
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _ambientAgent = ambientAgent ?? (static () => null);
        _origin = _time.GetTimestamp();
        StartedAt = _time.GetUtcNow();
        _ring = new JournalEntry?[options.JournalCapacity];
    }

    /// <summary>The store every operation is forwarded to (the dashboard reads through it, unrecorded).</summary>
    public IConcordStore Inner => _inner;

    /// <summary>Wall-clock time of the journal's time zero (entry times are milliseconds after it).</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>The last journal position assigned.</summary>
    public long LastSeq
    {
        get
        {
            lock (_sync) return _seq;
        }
    }

    /// <summary>Milliseconds since the journal started.</summary>
    public double Now => Ms(_time.GetTimestamp());

    // ------------------------------------------------------------------ IConcordStore

    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) => _inner.GetRevisionAsync(cancellationToken);

    public async ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (IsReserved(key)) return await _inner.GetAsync(ns, key, options, cancellationToken).ConfigureAwait(false);
        var op = Begin(ns, key, options?.Agent, "read", writes: false);
        try
        {
            var record = await _inner.GetAsync(ns, key, options, cancellationToken).ConfigureAwait(false);
            CompleteRead(op, record);
            return record;
        }
        catch (Exception e)
        {
            CompleteError(op, e);
            throw;
        }
    }

    public async ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (IsReserved(request.Prefix)) return await _inner.ListAsync(ns, request, cancellationToken).ConfigureAwait(false);
        var op = Begin(ns, request.Prefix, null, "list", writes: false);
        try
        {
            var page = await _inner.ListAsync(ns, request, cancellationToken).ConfigureAwait(false);
            CompleteList(op, page);
            return page;
        }
        catch (Exception e)
        {
            CompleteError(op, e);
            throw;
        }
    }

    public ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        IsReserved(key) ? _inner.PutAsync(ns, key, value, options, cancellationToken) : WriteAsync("put", ns, key, options, () => _inner.PutAsync(ns, key, value, options, cancellationToken));

    public ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        IsReserved(key) ? _inner.DeleteAsync(ns, key, options, cancellationToken) : WriteAsync("delete", ns, key, options, () => _inner.DeleteAsync(ns, key, options, cancellationToken));

    public ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        IsReserved(key) ? _inner.PatchAsync(ns, key, patch, options, cancellationToken) : WriteAsync("patch", ns, key, options, () => _inner.PatchAsync(ns, key, patch, options, cancellationToken));

    private async ValueTask<WriteResult> WriteAsync(string kind, string ns, string key, WriteOptions? options, Func<ValueTask<WriteResult>> call)
    {
        var op = Begin(ns, key, options?.Agent, kind, writes: true, options);
        try
        {
            var result = await call().ConfigureAwait(false);
            CompleteWrite(op, result, options);
            return result;
        }
        catch (Exception e)
        {
            CompleteError(op, e);
            throw;
        }
    }

    public async ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ops = request.Then.Concat(request.Else).ToList();
        if (ops.Count > 0 && ops.All(o => IsReserved(o.Key))) return await _inner.TransactAsync(ns, request, options, cancellationToken).ConfigureAwait(false);
        var op = Begin(ns, null, options?.Agent, "txn", writes: ops.Any(o => o.Kind != TxnOpKind.Get), options);
        try
        {
            var result = await _inner.TransactAsync(ns, request, options, cancellationToken).ConfigureAwait(false);
            CompleteTxn(op, request, result);
            return result;
        }
        catch (Exception e)
        {
            CompleteError(op, e);
            throw;
        }
    }

    public IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, CancellationToken cancellationToken = default) =>
        _inner.WatchAsync(ns, request, cancellationToken);

    /// <summary>Does nothing: the server owns (and disposes) the inner store.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    // ------------------------------------------------------------------ queries

    /// <summary>The newest entries (optionally of one namespace) after <paramref name="afterSeq"/>, oldest first, at most <paramref name="limit"/>.</summary>
    public IReadOnlyList<JournalEntry> Entries(string? ns = null, long afterSeq = 0, int limit = int.MaxValue, Func<string, bool>? allowed = null)
    {
        lock (_sync)
        {
            var result = new List<JournalEntry>();
            // Walk backwards from the newest so "the last N" is cheap, then reverse.
            for (var seq = _seq; seq > afterSeq && result.Count < limit; seq--)
            {
                var entry = _ring[(seq - 1) % _ring.Length];
                if (entry is null || entry.Seq != seq) break; // evicted
                if (ns is not null && entry.Ns != ns) continue;
                if (allowed is not null && !allowed(entry.Ns)) continue;
                result.Add(entry);
            }
            result.Reverse();
            return result;
        }
    }

    /// <summary>The oldest position still in the ring (entries before it were evicted).</summary>
    public long FirstRetainedSeq
    {
        get
        {
            lock (_sync) return Math.Max(1, _seq - _ring.Length + 1);
        }
    }

    public IReadOnlyList<LostUpdateFinding> Findings(string? ns = null, Func<string, bool>? allowed = null)
    {
        lock (_sync) return [.. _findings.Where(f => (ns is null || f.Ns == ns) && (allowed is null || allowed(f.Ns)))];
    }

    public IReadOnlyList<NamespaceSummary> Namespaces()
    {
        lock (_sync)
        {
            return [.. _namespaces.Values.OrderBy(n => n.Name, StringComparer.Ordinal).Select(n => new NamespaceSummary(
                n.Name, n.Ops, n.Writes, n.Conflicts, n.Retries, n.LostUpdates, n.Agents, n.LastSeen, n.LastSeq))];
        }
    }

    public IReadOnlyList<AgentSummary> Agents(string? ns = null, Func<string, bool>? allowed = null)
    {
        lock (_sync)
        {
            return [.. _agents.Values
                .Where(a => (ns is null || a.Ns == ns) && (allowed is null || allowed(a.Ns)))
                .OrderBy(a => a.Ns, StringComparer.Ordinal).ThenBy(a => a.Agent, StringComparer.Ordinal)
                .Select(a => new AgentSummary(a.Ns, a.Agent, a.Ops, a.Reads, a.Writes, a.Conflicts, a.Retries, a.Overwrote, a.LostUpdates, a.LastSeen, a.LastSeq))];
        }
    }

    /// <summary>
    /// A consistent snapshot for the checkers: the retained entries of <paramref name="ns"/>, the operations still in
    /// flight there, the completion time of the newest evicted entry, and per key the last effect evicted from the ring.
    /// </summary>
    internal JournalSnapshot Snapshot(string ns)
    {
        lock (_sync)
        {
            var entries = new List<JournalEntry>();
            for (var seq = Math.Max(1, _seq - _ring.Length + 1); seq <= _seq; seq++)
            {
                if (_ring[(seq - 1) % _ring.Length] is { } e && e.Seq == seq && e.Ns == ns) entries.Add(e);
            }
            var inFlight = _inFlight.Values.Where(f => f.Ns == ns).Select(f => f.Start).ToList();
            var baselines = _baselines.Where(b => b.Key.Ns == ns).ToDictionary(b => b.Key.Key, b => b.Value, StringComparer.Ordinal);
            return new JournalSnapshot(ns, entries, inFlight, _evictedEnd, baselines, _namespaces.TryGetValue(ns, out var s) ? s.LastSeq : 0);
        }
    }

    /// <summary>Namespaces whose last operation is newer than <paramref name="checkedSeq"/>.</summary>
    internal IReadOnlyList<(string Ns, long LastSeq)> ChangedSince(IReadOnlyDictionary<string, long> checkedSeq)
    {
        lock (_sync)
        {
            return [.. _namespaces.Values.Where(n => !checkedSeq.TryGetValue(n.Name, out var seen) || seen < n.LastSeq).Select(n => (n.Name, n.LastSeq))];
        }
    }

    // ------------------------------------------------------------------ live subscribers

    /// <summary>
    /// Subscribes to journal entries, lost-update findings and anything else <see cref="Publish"/>ed. A subscriber that
    /// falls more than <see cref="DashboardOptions.SubscriberBuffer"/> events behind is marked overflowed (the viewer reloads).
    /// </summary>
    public Subscriber Subscribe(string? ns, Func<string, bool> allowed)
    {
        var subscriber = new Subscriber(this, ns, allowed, _options.SubscriberBuffer);
        lock (_sync) _subscribers.Add(subscriber);
        return subscriber;
    }

    /// <summary>Sends an event (such as a checker verdict) to the subscribers allowed to see <paramref name="ns"/>.</summary>
    public void Publish(string type, string ns, object payload)
    {
        lock (_sync) PublishLocked(type, ns, payload, 0);
    }

    private void Unsubscribe(Subscriber subscriber)
    {
        lock (_sync) _subscribers.Remove(subscriber);
    }

    // Caller holds _sync: subscribers see events in journal order.
    private void PublishLocked(string type, string ns, object payload, long id)
    {
        if (_subscribers.Count == 0) return;
        string? json = null;
        foreach (var s in _subscribers)
        {
            if (!s.Wants(ns)) continue;
            json ??= JsonSerializer.Serialize(payload, payload.GetType(), DashboardJson.Options);
            s.Offer(new DashboardEvent(type, ns, json, id));
        }
    }

    // ------------------------------------------------------------------ recording

    private static bool IsReserved(string key) => key.StartsWith(Reserved, StringComparison.Ordinal);

    private double Ms(long timestamp) => Math.Round((timestamp - _origin) * 1000.0 / _time.TimestampFrequency, 3);

    private InFlight Begin(string ns, string? key, string? agent, string kind, bool writes, WriteOptions? options = null)
    {
        var flight = new InFlight
        {
            Ns = ns,
            Key = key,
            Agent = agent ?? _ambientAgent() ?? "anonymous",
            Kind = kind,
            Writes = writes,
            Expect = options is null ? null : Describe(options.Expect),
            Start = Ms(_time.GetTimestamp()),
        };
        lock (_sync)
        {
            flight.Id = ++_nextOpId;
            _inFlight.Add(flight.Id, flight);
        }
        return flight;
    }

    private static string Describe(Expectation e)
    {
        var text = e.Kind switch
        {
            ExpectationKind.Any => "any",
            ExpectationKind.Absent => "absent",
            ExpectationKind.Exists => "exists",
            ExpectationKind.Version => e.Version == 0 ? "absent" : $"v{e.Version}",
            _ => e.Kind.ToString().ToLowerInvariant(),
        };
        return e.Fence is { } f ? $"{text} fence {f.Lock}:{f.Token}" : text;
    }

    private static string? Describe(CausalStamp? stamp) =>
        stamp is null ? null : $"dot {stamp.Dot}{(stamp.Concurrent ? " concurrent" : "")}{(stamp.SiblingMode ? " siblings" : "")}";

    private void CompleteRead(InFlight op, ConcordRecord? record)
    {
        var end = Ms(_time.GetTimestamp());
        lock (_sync)
        {
            _inFlight.Remove(op.Id);
            var track = Track(op.Ns, op.Key!);
            if (record is not null) track.Learn(record.Version, record.Writer, null, record.IsDeleted, record.Revision);
            var state = AgentKey(op.Ns, op.Key!, op.Agent);
            // Reading an absent key after a delete the journal saw means having seen the tombstone.
            var seen = record?.Version ?? (track.CurrentIsTombstone ? track.Current : 0);
            state.Observed = Math.Max(state.Observed, seen);
            Append(op, end, new JournalEntry
            {
                Seq = 0, Start = op.Start, End = end, Ns = op.Ns, Agent = op.Agent, Op = op.Kind, Key = op.Key,
                Outcome = record is null ? "absent" : "ok",
                Version = record?.Version ?? 0,
                Revision = record?.Revision,
                Writer = record?.Writer,
                BasedOnSeq = record is null ? null : track.SeqOf(record.Version),
                Causal = Describe(record?.Causal),
            }, stats => stats.Reads++);
        }
    }

    private void CompleteList(InFlight op, ListResult page)
    {
        var end = Ms(_time.GetTimestamp());
        lock (_sync)
        {
            _inFlight.Remove(op.Id);
            foreach (var record in page.Records.Take(MaxObservedPerList))
            {
                Track(op.Ns, record.Key).Learn(record.Version, record.Writer, null, record.IsDeleted, record.Revision);
                var state = AgentKey(op.Ns, record.Key, op.Agent);
                state.Observed = Math.Max(state.Observed, record.Version);
            }
            Append(op, end, new JournalEntry
            {
                Seq = 0, Start = op.Start, End = end, Ns = op.Ns, Agent = op.Agent, Op = op.Kind, Key = op.Key,
                Outcome = "ok", Revision = page.Revision, Count = page.Records.Count,
            }, stats => stats.Reads++);
        }
    }

    private void CompleteError(InFlight op, Exception e)
    {
        var end = Ms(_time.GetTimestamp());
        lock (_sync)
        {
            _inFlight.Remove(op.Id);
            Append(op, end, new JournalEntry
            {
                Seq = 0, Start = op.Start, End = end, Ns = op.Ns, Agent = op.Agent, Op = op.Kind, Key = op.Key,
                Outcome = "error", Expect = op.Expect,
                Message = e is OperationCanceledException ? "cancelled" : e.Message,
            }, null);
        }
    }

    private void CompleteWrite(InFlight op, WriteResult result, WriteOptions? options)
    {
        var end = Ms(_time.GetTimestamp());
        var expect = options?.Expect ?? Concord.Expect.Any;
        lock (_sync)
        {
            _inFlight.Remove(op.Id);
            var seq = _seq + 1;
            var attempt = NextAttempt(op, result.IsApplied);
            if (!result.IsApplied)
            {
                var current = result.Record;
                var track = Track(op.Ns, op.Key!);
                if (current is not null)
                {
                    track.Learn(current.Version, current.Writer, null, current.IsDeleted, current.Revision);
                    // The refusal carried the current record: the agent has now seen it (UpdateAsync recomputes from it).
                    var state = AgentKey(op.Ns, op.Key!, op.Agent);
                    state.Observed = Math.Max(state.Observed, current.Version);
                }
                Append(op, end, new JournalEntry
                {
                    Seq = 0, Start = op.Start, End = end, Ns = op.Ns, Agent = op.Agent, Op = op.Kind, Key = op.Key,
                    Outcome = "conflict", Expect = op.Expect,
                    Version = result.Version, Revision = result.Revision, Writer = current?.Writer,
                    Conflict = Http.Problems.WireJsonName(result.Conflict), Message = result.Message,
                    ConflictWithSeq = current is null ? null : track.SeqOf(current.Version),
                    Attempt = attempt, Replayed = result.Replayed,
                }, stats => stats.Conflicts++);
                return;
            }
            var effect = ApplyEffect(op.Ns, op.Key!, op.Agent, op.Kind, expect, result.Record!, seq, result.Replayed, end);
            Append(op, end, new JournalEntry
            {
                Seq = 0, Start = op.Start, End = end, Ns = op.Ns, Agent = op.Agent, Op = op.Kind, Key = op.Key,
                Outcome = "ok", Expect = op.Expect,
                Version = result.Version, Revision = result.Record!.Revision, Writer = result.Record.Writer ?? op.Agent,
                BasedOn = effect.BasedOn, BasedOnSeq = effect.BasedOnSeq, Blind = effect.Blind,
                Attempt = attempt, Replayed = result.Replayed, Causal = Describe(result.Record.Causal),
                Expires = options?.Ttl is not null || result.Record.ExpiresAt is not null,
            }, stats => stats.Writes++);
        }
    }

    private void CompleteTxn(InFlight op, TxnRequest request, TxnResult result)
    {
        var end = Ms(_time.GetTimestamp());
        lock (_sync)
        {
            _inFlight.Remove(op.Id);
            var seq = _seq + 1;
            var attempt = op.Writes ? NextAttempt(op, result.IsApplied) : (int?)null;
            if (result.Conflict is { } conflict)
            {
                var track = Track(op.Ns, conflict.Key);
                if (conflict.Record is { } current) track.Learn(current.Version, current.Writer, null, current.IsDeleted, current.Revision);
                Append(op, end, new JournalEntry
                {
                    Seq = 0, Start = op.Start, End = end, Ns = op.Ns, Agent = op.Agent, Op = "txn", Key = conflict.Key,
                    Outcome = "conflict", Version = conflict.Version, Revision = result.Revision, Writer = conflict.Record?.Writer,
                    Conflict = Http.Problems.WireJsonName(conflict.Conflict), Message = conflict.Message,
                    ConflictWithSeq = conflict.Record is null ? null : track.SeqOf(conflict.Version),
                    Attempt = attempt, Replayed = result.Replayed,
                }, stats => stats.Conflicts++);
                return;
            }
            var branch = result.Succeeded ? request.Then : request.Else;
            var parts = new List<TxnPart>();
            for (var i = 0; i < result.Results.Count; i++)
            {
                var r = result.Results[i];
                if (IsReserved(r.Key)) continue;
                if (r.Kind == TxnOpKind.Get)
                {
                    if (r.Record is { } read)
                    {
                        Track(op.Ns, r.Key).Learn(read.Version, read.Writer, null, read.IsDeleted, read.Revision);
                        var state = AgentKey(op.Ns, r.Key, op.Agent);
                        state.Observed = Math.Max(state.Observed, read.Version);
                    }
                    parts.Add(new TxnPart("read", r.Key, r.Record?.Version ?? 0, r.Record?.Revision, r.Record?.Writer, null, null));
                    continue;
                }
                if (r.Record is null) continue;
                var expect = i < branch.Count ? branch[i].Expect : default;
                var kind = r.Kind switch { TxnOpKind.Delete => "delete", TxnOpKind.Put => "put", _ => "patch" };
                var effect = ApplyEffect(op.Ns, r.Key, op.Agent, kind, expect, r.Record, seq, result.Replayed, end);
                parts.Add(new TxnPart(kind, r.Key, r.Record.Version, r.Record.Revision, r.Record.Writer ?? op.Agent, effect.BasedOn, effect.BasedOnSeq));
            }
            Append(op, end, new JournalEntry
            {
                Seq = 0, Start = op.Start, End = end, Ns = op.Ns, Agent = op.Agent, Op = "txn",
                Outcome = result.Succeeded ? "ok" : "else", Revision = result.Revision,
                Attempt = attempt, Replayed = result.Replayed, Parts = parts,
            }, stats =>
            {
                if (op.Writes) stats.Writes++;
                else stats.Reads++;
            });
        }
    }

    // Caller holds _sync. Attempt numbering: a write right after a refused write by the same agent on the same key is a retry.
    private int NextAttempt(InFlight op, bool applied)
    {
        var state = AgentKey(op.Ns, op.Key ?? "", op.Agent);
        var attempt = state.LastWasConflict ? state.Attempt + 1 : 1;
        state.Attempt = attempt;
        state.LastWasConflict = !applied;
        return attempt;
    }

    private readonly record struct Effect(long BasedOn, long? BasedOnSeq, bool Blind);

    /// <summary>Records an applied write of <paramref name="record"/> and reports a lost update if it was blind over versions its agent never saw.</summary>
    // Caller holds _sync.
    private Effect ApplyEffect(string ns, string key, string agent, string kind, Expectation expect, ConcordRecord record, long seq, bool replayed, double end)
    {
        var track = Track(ns, key);
        var state = AgentKey(ns, key, agent);
        var newVersion = record.Version;
        var previous = newVersion - 1;
        var blind = kind is "put" or "delete" && expect.Kind is ExpectationKind.Any or ExpectationKind.Exists;
        var basedOn = kind == "patch" ? previous
            : expect.Kind == ExpectationKind.Version ? expect.Version
            : expect.Kind == ExpectationKind.Absent ? previous
            : Math.Min(state.Observed, previous);
        var basedOnSeq = track.SeqOf(basedOn);
        if (replayed) return new Effect(basedOn, basedOnSeq, blind);

        track.Learn(newVersion, record.Writer ?? agent, seq, record.IsDeleted, record.Revision);
        state.Observed = Math.Max(state.Observed, newVersion);
        if (blind && basedOn < previous)
        {
            var loss = new PendingLoss(ns, key, agent, seq, newVersion, basedOn, kind == "delete", end);
            if (!TryResolve(loss, force: false)) _pendingLosses.Add(loss);
        }
        // A version this write learned about may complete an earlier overwrite's finding (completions can arrive out of commit order).
        for (var i = _pendingLosses.Count - 1; i >= 0; i--)
        {
            var p = _pendingLosses[i];
            if (p.Ns == ns && p.Key == key && TryResolve(p, force: false)) _pendingLosses.RemoveAt(i);
        }
        return new Effect(basedOn, basedOnSeq, blind);
    }

    // Caller holds _sync. Resolves once every overwritten version is known (completions arrive out of commit order), or
    // when nothing still in flight could tell us more.
    private bool TryResolve(PendingLoss loss, bool force)
    {
        var track = Track(loss.Ns, loss.Key);
        var previous = loss.OverwriteVersion - 1;
        if (!force)
        {
            var complete = true;
            for (var v = previous; v > loss.ReadVersion && v > previous - VersionsPerKey; v--)
            {
                if (!track.Knows(v))
                {
                    complete = false;
                    break;
                }
            }
            if (!complete && _inFlight.Values.Any(f => f.Writes && f.Ns == loss.Ns && (f.Key == loss.Key || f.Key is null))) return false;
        }
        var lost = new List<LostVersion>();
        long count = 0;
        for (var v = previous; v > loss.ReadVersion; v--)
        {
            var info = track.Info(v);
            if (info is { Tombstone: true }) continue;
            if (info is { } i && i.Writer == loss.Overwriter) continue;
            // Versions the journal has forgotten (only the newest per key are kept) still count, without a name.
            count++;
            if (lost.Count < MaxLostListed && (info is not null || v == previous)) lost.Add(new LostVersion(v, info?.Writer, info?.Seq));
        }
        if (lost.Count == 0) return true;
        var finding = new LostUpdateFinding
        {
            Ns = loss.Ns, Key = loss.Key, Overwriter = loss.Overwriter, OverwriteSeq = loss.Seq, OverwriteVersion = loss.OverwriteVersion,
            ReadVersion = loss.ReadVersion, Lost = lost, LostCount = count, Delete = loss.Delete, Time = loss.Time,
        };
        _findings.AddLast(finding);
        while (_findings.Count > _options.FindingsCapacity) _findings.RemoveFirst();
        var stats = Namespace(loss.Ns);
        stats.LostUpdates++;
        Agent(loss.Ns, loss.Overwriter).Overwrote++;
        foreach (var victim in lost.Select(l => l.Writer).OfType<string>().Distinct(StringComparer.Ordinal)) Agent(loss.Ns, victim).LostUpdates++;
        // Published after the entry being recorded, so viewers see the overwrite before the finding about it.
        _deferred.Add(("lost", loss.Ns, finding));
        return true;
    }

    // Caller holds _sync.
    private void Append(InFlight op, double end, JournalEntry entry, Action<AgentStats>? count)
    {
        var seq = ++_seq;
        entry = entry with { Seq = seq };
        var slot = (seq - 1) % _ring.Length;
        if (_ring[slot] is { } evicted) Evict(evicted);
        _ring[slot] = entry;

        var ns = Namespace(op.Ns);
        ns.Ops++;
        ns.LastSeq = seq;
        ns.LastSeen = end;
        var agent = Agent(op.Ns, op.Agent);
        agent.Ops++;
        agent.LastSeen = end;
        agent.LastSeq = seq;
        count?.Invoke(agent);
        if (entry.Outcome == "conflict") ns.Conflicts++;
        if (entry.Attempt > 1)
        {
            ns.Retries++;
            agent.Retries++;
        }
        if (entry.Op is "put" or "patch" or "delete" && entry.Outcome == "ok") ns.Writes++;

        PublishLocked("op", op.Ns, entry, seq);

        // Losses waiting for a writer that has since failed or finished: nothing can tell us more.
        if (_pendingLosses.Count > 0 && op.Writes)
        {
            for (var i = _pendingLosses.Count - 1; i >= 0; i--)
            {
                var p = _pendingLosses[i];
                if (p.Ns == op.Ns && TryResolve(p, force: !_inFlight.Values.Any(f => f.Writes && f.Ns == p.Ns))) _pendingLosses.RemoveAt(i);
            }
        }
        foreach (var (type, where, payload) in _deferred) PublishLocked(type, where, payload, 0);
        _deferred.Clear();
    }

    // Caller holds _sync: remember the last effect of each key that leaves the window, so the checkers can start from it.
    private void Evict(JournalEntry evicted)
    {
        _evictedEnd = Math.Max(_evictedEnd, evicted.End);
        if (evicted.Outcome != "ok" || evicted.Replayed) return;
        switch (evicted.Op)
        {
            case "put" or "patch" or "delete" when evicted.Key is not null:
                SetBaseline(evicted.Ns, evicted.Key, evicted.Op == "delete" ? null : evicted.Revision);
                break;
            case "txn" when evicted.Parts is { } parts:
                foreach (var part in parts.Where(p => p.Op != "read"))
                    SetBaseline(evicted.Ns, part.Key, part.Op == "delete" ? null : part.Revision);
                break;
        }
    }

    private void SetBaseline(string ns, string key, long? revision)
    {
        // Commits happen in revision order, so the highest evicted revision is the key's state when the window begins.
        if (_baselines.TryGetValue((ns, key), out var old) && old.Revision is { } r && revision is { } n && n < r) return;
        if (_baselines.Count >= MaxTrackedKeys) _baselines.Clear();
        _baselines[(ns, key)] = new Baseline(revision);
    }

    private KeyTrack Track(string ns, string key)
    {
        if (!_keys.TryGetValue((ns, key), out var track))
        {
            if (_keys.Count >= MaxTrackedKeys) Trim(_keys, t => t.LastTouched);
            _keys[(ns, key)] = track = new KeyTrack();
        }
        track.LastTouched = _seq;
        return track;
    }

    private AgentKeyState AgentKey(string ns, string key, string agent)
    {
        if (!_agentKeys.TryGetValue((ns, key, agent), out var state))
        {
            if (_agentKeys.Count >= MaxAgentKeyStates) Trim(_agentKeys, s => s.LastTouched);
            _agentKeys[(ns, key, agent)] = state = new AgentKeyState();
        }
        state.LastTouched = _seq;
        return state;
    }

    /// <summary>Forgets the least recently touched tenth of a map (rare: only past hundreds of thousands of keys).</summary>
    private static void Trim<TKey, TValue>(Dictionary<TKey, TValue> map, Func<TValue, long> touched)
        where TKey : notnull
    {
        var cutoff = map.Values.Select(touched).Order().ElementAt(map.Count / 10);
        foreach (var key in map.Where(p => touched(p.Value) <= cutoff).Select(p => p.Key).ToList()) map.Remove(key);
    }

    private NamespaceStats Namespace(string ns)
    {
        if (!_namespaces.TryGetValue(ns, out var stats)) _namespaces[ns] = stats = new NamespaceStats(ns);
        return stats;
    }

    private AgentStats Agent(string ns, string agent)
    {
        if (!_agents.TryGetValue((ns, agent), out var stats))
        {
            _agents[(ns, agent)] = stats = new AgentStats(ns, agent);
            Namespace(ns).Agents++;
        }
        return stats;
    }

    // ------------------------------------------------------------------ state types (guarded by _sync)

    private sealed class InFlight
    {
        public long Id;
        public required string Ns;
        public required string? Key;
        public required string Agent;
        public required string Kind;
        public required bool Writes;
        public required string? Expect;
        public required double Start;
    }

    private sealed record VersionInfo(string? Writer, long? Seq, bool Tombstone);

    /// <summary>What the journal knows of one key's recent versions.</summary>
    private sealed class KeyTrack
    {
        private readonly SortedDictionary<long, VersionInfo> _versions = [];

        public long Current { get; private set; }

        public bool CurrentIsTombstone { get; private set; }

        public long LastTouched;

        public void Learn(long version, string? writer, long? seq, bool tombstone, long revision)
        {
            _ = revision;
            if (_versions.TryGetValue(version, out var known))
            {
                // Keep the journal position once known; a read may have taught us the version first.
                _versions[version] = new VersionInfo(known.Writer ?? writer, known.Seq ?? seq, tombstone);
            }
            else
            {
                _versions[version] = new VersionInfo(writer, seq, tombstone);
                while (_versions.Count > VersionsPerKey) _versions.Remove(_versions.Keys.First());
            }
            if (version >= Current)
            {
                Current = version;
                CurrentIsTombstone = tombstone;
            }
        }

        public bool Knows(long version) => version == 0 || _versions.ContainsKey(version);

        public VersionInfo? Info(long version) => _versions.TryGetValue(version, out var info) ? info : null;

        public long? SeqOf(long version) => _versions.TryGetValue(version, out var info) ? info.Seq : null;
    }

    private sealed class AgentKeyState
    {
        public long Observed;
        public int Attempt;
        public bool LastWasConflict;
        public long LastTouched;
    }

    private sealed record PendingLoss(string Ns, string Key, string Overwriter, long Seq, long OverwriteVersion, long ReadVersion, bool Delete, double Time);

    private sealed class NamespaceStats(string name)
    {
        public string Name { get; } = name;
        public long Ops, Writes, Conflicts, Retries, LostUpdates, LastSeq;
        public int Agents;
        public double LastSeen;
    }

    private sealed class AgentStats(string ns, string agent)
    {
        public string Ns { get; } = ns;
        public string Agent { get; } = agent;
        public long Ops, Reads, Writes, Conflicts, Retries, Overwrote, LostUpdates, LastSeq;
        public double LastSeen;
    }

    // ------------------------------------------------------------------ subscribers

    /// <summary>One live viewer's queue of events. Dispose to unsubscribe.</summary>
    internal sealed class Subscriber : IDisposable
    {
        private readonly OperationJournal _journal;
        private readonly string? _ns;
        private readonly Func<string, bool> _allowed;
        private readonly Channel<DashboardEvent> _channel;
        private volatile bool _overflowed;

        public Subscriber(OperationJournal journal, string? ns, Func<string, bool> allowed, int capacity)
        {
            _journal = journal;
            _ns = ns;
            _allowed = allowed;
            _channel = Channel.CreateBounded<DashboardEvent>(new BoundedChannelOptions(capacity)
            {
                SingleReader = true,
                FullMode = BoundedChannelFullMode.DropWrite,
            }, _ => _overflowed = true);
        }

        /// <summary>True once an event was dropped because the viewer fell behind.</summary>
        public bool Overflowed => _overflowed;

        public ChannelReader<DashboardEvent> Reader => _channel.Reader;

        public bool Wants(string ns) => (_ns is null || _ns == ns) && _allowed(ns);

        public void Offer(DashboardEvent e)
        {
            if (!_channel.Writer.TryWrite(e)) _overflowed = true;
        }

        public void Dispose()
        {
            _journal.Unsubscribe(this);
            _channel.Writer.TryComplete();
        }
    }
}

/// <summary>An event for live viewers: its SSE type, namespace, JSON payload, and (for journal entries) its position.</summary>
internal sealed record DashboardEvent(string Type, string Ns, string Json, long Id);

/// <summary>The last value (a revision; null = deleted) a key had when its last effect left the journal's window.</summary>
internal sealed record Baseline(long? Revision);

/// <summary>What <see cref="JournalHistory"/> needs, copied under the journal's lock.</summary>
internal sealed record JournalSnapshot(string Ns, IReadOnlyList<JournalEntry> Entries, IReadOnlyList<double> InFlightStarts, double EvictedEnd,
    IReadOnlyDictionary<string, Baseline> Baselines, long LastSeq);
