using System.Globalization;
using System.Text;
using System.Text.Json;
using Concord.Coordination.Locks;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;
using Concord.Lab.History;
using Concord.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;

namespace Concord.Server.Dashboard;

/// <summary>
/// <c>/dashboard/api</c>: JSON snapshots for the dashboard (namespaces, journal, agents, keys, locks, queues, streams,
/// verdicts, lost updates, the journal as a lab history) and <c>/dashboard/events</c>, the live event stream (SSE).
/// Every route needs the read right; global views show only the namespaces the caller's key may read.
/// </summary>
internal static class DashboardApi
{
    public const string EventsPath = "/dashboard/events";
    private const int MaxPage = 1000;
    private const int MaxCoordinationItems = 100;
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan CoordinationDebounce = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan NativeQueuePoll = TimeSpan.FromSeconds(2);

    internal sealed record KeyRow(string Key, long Version, long Revision, string? Writer, DateTimeOffset CommittedAt, DateTimeOffset? ExpiresAt,
        int Size, string Preview, bool Concurrent, bool Siblings);

    internal sealed record QueueRow(string Queue, int Depth, int Ready, int Delayed, int Waiting, int InFlight, int Dead, IReadOnlyList<DeadLetterRow> DeadLetters);

    internal sealed record DeadLetterRow(string Id, int Attempts, string? LastError, DateTimeOffset? DeadAt);

    internal sealed record StreamRow(string Stream, long Version, long LastRevision);

    internal sealed record CheckpointRow(string Group, string Position);

    public static void MapDashboardApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/dashboard/api").WithTags("Dashboard").ExcludeFromDescription();
        api.MapGet("/overview", Overview);
        api.MapGet("/journal", Journal);
        api.MapGet("/findings", Findings);
        api.MapGet("/agents", Agents);
        api.MapGet("/verdicts", Verdicts);
        api.MapPost("/check", CheckAsync);
        api.MapGet("/ns/{ns}/keys", KeysAsync);
        api.MapGet("/ns/{ns}/locks", LocksAsync);
        api.MapGet("/ns/{ns}/queues", QueuesAsync);
        api.MapGet("/ns/{ns}/streams", StreamsAsync);
        api.MapGet("/ns/{ns}/history.jsonl", History);
        app.MapGet(EventsPath, EventsAsync).ExcludeFromDescription();
    }

    /// <summary>Authenticates; on success <paramref name="allowed"/> says which namespaces the caller may read.</summary>
    private static IResult? Authorize(HttpContext http, Auth auth, out Func<string, bool> allowed)
    {
        allowed = static _ => false;
        if (auth.Authenticate(http, out var caller) is { } denied) return denied;
        allowed = ns => Auth.Permits(caller, ns, ApiRights.Read);
        return null;
    }

    private static IResult? AuthorizeNamespace(HttpContext http, Auth auth, string ns) => auth.Check(http, ns, ApiRights.Read, out _);

    private static string? Query(HttpContext http, string name) => http.Request.Query[name].Count > 0 ? http.Request.Query[name].ToString() : null;

    private static int Limit(HttpContext http, int fallback, int max)
    {
        var text = Query(http, "limit");
        if (text is null) return fallback;
        var n = StateApi.ParseLong(text, "limit");
        return (int)Math.Clamp(n, 1, max);
    }

    private static IResult Json(object value) => Results.Text(JsonSerializer.Serialize(value, value.GetType(), DashboardJson.Options), "application/json", Encoding.UTF8);

    private static IResult Overview(HttpContext http, Auth auth, OperationJournal journal, ConcordServerOptions server)
    {
        if (Authorize(http, auth, out var allowed) is { } denied) return denied;
        return Json(new
        {
            startedAt = journal.StartedAt,
            now = journal.Now,
            lastSeq = journal.LastSeq,
            firstSeq = journal.FirstRetainedSeq,
            authentication = auth.Enabled,
            strict = server.Strict,
            backend = server.Backend,
            namespaces = journal.Namespaces().Where(n => allowed(n.Ns)).ToList(),
        });
    }

    private static IResult Journal(HttpContext http, Auth auth, OperationJournal journal)
    {
        if (Authorize(http, auth, out var allowed) is { } denied) return denied;
        var ns = Query(http, "ns");
        if (ns is not null && !allowed(ns)) return Auth.Forbidden(ns, ApiRights.Read);
        var after = Query(http, "after") is { } a ? StateApi.ParseLong(a, "after") : 0;
        var entries = journal.Entries(ns, after, Limit(http, 2000, 20_000), allowed);
        return Json(new { entries, lastSeq = journal.LastSeq, firstSeq = journal.FirstRetainedSeq, now = journal.Now });
    }

    private static IResult Findings(HttpContext http, Auth auth, OperationJournal journal)
    {
        if (Authorize(http, auth, out var allowed) is { } denied) return denied;
        return Json(journal.Findings(Query(http, "ns"), allowed).Select(f => new { finding = f, explanation = f.Explanation }).ToList());
    }

    private static IResult Agents(HttpContext http, Auth auth, OperationJournal journal)
    {
        if (Authorize(http, auth, out var allowed) is { } denied) return denied;
        return Json(journal.Agents(Query(http, "ns"), allowed));
    }

    private static IResult Verdicts(HttpContext http, Auth auth, VerdictService verdicts)
    {
        if (Authorize(http, auth, out var allowed) is { } denied) return denied;
        return Json(verdicts.Latest(allowed));
    }

    private static async Task<IResult> CheckAsync(HttpContext http, Auth auth, VerdictService verdicts, CancellationToken ct)
    {
        if (Authorize(http, auth, out var allowed) is { } denied) return denied;
        var ns = Query(http, "ns");
        if (ns is not null && !allowed(ns)) return Auth.Forbidden(ns, ApiRights.Read);
        return Json(await verdicts.CheckNowAsync(ns, allowed, ct));
    }

    private static async Task<IResult> KeysAsync(HttpContext http, string ns, Auth auth, OperationJournal journal, CancellationToken ct)
    {
        if (AuthorizeNamespace(http, auth, ns) is { } denied) return denied;
        var prefix = Query(http, "prefix") ?? "";
        var after = Query(http, "after");
        var limit = Limit(http, 100, MaxPage);
        var rows = new List<KeyRow>(limit);
        long revision = 0;
        string? next = after;
        // Reserved _sys/ keys (locks, queues, streams) have their own panels; skip past them without counting them.
        for (var pages = 0; rows.Count < limit && pages < 20; pages++)
        {
            var page = await journal.Inner.ListAsync(ns, new ListRequest { Prefix = prefix, After = next, Limit = limit - rows.Count + 1, AtRevision = revision == 0 ? null : revision }, ct);
            revision = page.Revision;
            var sawReserved = false;
            foreach (var r in page.Records)
            {
                if (r.Key.StartsWith("_sys/", StringComparison.Ordinal))
                {
                    sawReserved = true;
                    continue;
                }
                if (rows.Count == limit) break;
                rows.Add(Row(r));
            }
            next = rows.Count == limit && page.Records.Count > 0 ? rows[^1].Key
                : sawReserved && page.NextAfter is not null && string.CompareOrdinal(page.NextAfter, "_sys0") < 0 ? "_sys0"
                : page.NextAfter;
            if (next is null) break;
        }
        // "More" only if something follows the last row.
        if (next is not null && rows.Count == limit)
        {
            var probe = await journal.Inner.ListAsync(ns, new ListRequest { Prefix = prefix, After = next, Limit = 1, AtRevision = revision }, ct);
            if (probe.Records.Count == 0) next = null;
        }
        else if (rows.Count < limit) next = null;
        return Json(new { ns, keys = rows, next, revision });
    }

    private static KeyRow Row(ConcordRecord r)
    {
        var raw = r.Value.ValueKind == JsonValueKind.Undefined ? "" : r.Value.GetRawText();
        var preview = raw.Length > 160 ? raw[..157] + "…" : raw;
        return new KeyRow(r.Key, r.Version, r.Revision, r.Writer, r.CommittedAt, r.ExpiresAt, Encoding.UTF8.GetByteCount(raw), preview,
            r.Causal?.Concurrent ?? false, r.Causal?.SiblingMode ?? false);
    }

    private static async Task<IResult> LocksAsync(HttpContext http, string ns, Auth auth, ILockService locks, CancellationToken ct)
    {
        if (AuthorizeNamespace(http, auth, ns) is { } denied) return denied;
        return Json(await locks.ListAsync(ns, ct));
    }

    private static async Task<IResult> QueuesAsync(HttpContext http, string ns, Auth auth, IQueueService queues, CancellationToken ct)
    {
        if (AuthorizeNamespace(http, auth, ns) is { } denied) return denied;
        var rows = new List<QueueRow>();
        foreach (var name in (await queues.ListQueuesAsync(ns, null, MaxCoordinationItems, ct)).Queues)
        {
            var stats = await queues.GetStatsAsync(ns, name, ct);
            var dead = stats.Dead > 0 ? await queues.ListDeadLettersAsync(ns, name, 5, ct) : [];
            rows.Add(new QueueRow(name, stats.Ready + stats.Delayed + stats.Waiting, stats.Ready, stats.Delayed, stats.Waiting, stats.Leased, stats.Dead,
                [.. dead.Select(d => new DeadLetterRow(d.Id, d.Attempts, d.LastError, d.DeadAt))]));
        }
        return Json(rows);
    }

    private static async Task<IResult> StreamsAsync(HttpContext http, string ns, Auth auth, OperationJournal journal, IStreamService streamService, CancellationToken ct)
    {
        if (AuthorizeNamespace(http, auth, ns) is { } denied) return denied;
        var streams = new List<StreamRow>();
        var heads = await journal.Inner.ListAsync(ns, new ListRequest { Prefix = StoreStreamService.KeyPrefix + "h/", Limit = MaxCoordinationItems }, ct);
        foreach (var head in heads.Records)
        {
            var name = head.Key[(StoreStreamService.KeyPrefix.Length + 2)..];
            if (await streamService.GetStreamAsync(ns, name, ct) is { } info) streams.Add(new StreamRow(info.Stream, info.Version, info.LastRevision));
        }
        var groups = await journal.Inner.ListAsync(ns, new ListRequest { Prefix = StoreStreamService.KeyPrefix + "g/", Limit = MaxCoordinationItems }, ct);
        var checkpoints = groups.Records.Select(g => new CheckpointRow(Uri.UnescapeDataString(g.Key[(StoreStreamService.KeyPrefix.Length + 2)..]),
            g.Value.ValueKind == JsonValueKind.Object && g.Value.TryGetProperty("position", out var p) ? p.ToString() : g.Value.GetRawText())).ToList();
        return Json(new { streams, checkpoints, more = heads.NextAfter is not null });
    }

    private static IResult History(HttpContext http, string ns, Auth auth, OperationJournal journal)
    {
        if (AuthorizeNamespace(http, auth, ns) is { } denied) return denied;
        var (history, _) = JournalHistory.Build(journal.Snapshot(ns));
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"{ns}-history.jsonl\"";
        return Results.Text(HistoryWriter.Format(history), "application/x-ndjson", Encoding.UTF8);
    }

    /// <summary>
    /// The live stream: <c>op</c> (a journal entry; its id is the journal position), <c>lost</c> (a lost-update finding),
    /// <c>verdict</c> (new checker verdicts), <c>coord</c> (locks, queues or streams of <c>?coord=NS</c> changed) and
    /// <c>reset</c> (the viewer fell behind: reload the snapshots and reconnect). Resumes after <c>Last-Event-ID</c>
    /// or <c>?after=SEQ</c>.
    /// </summary>
    private static async Task EventsAsync(HttpContext http, Auth auth, OperationJournal journal, IQueueService queues, TimeProvider time, IHostApplicationLifetime lifetime, CancellationToken ct)
    {
        if (Authorize(http, auth, out var allowed) is { } denied)
        {
            await denied.ExecuteAsync(http);
            return;
        }
        var ns = Query(http, "ns");
        var coord = Query(http, "coord");
        if ((ns is not null && !allowed(ns)) || (coord is not null && !allowed(coord)))
        {
            await Auth.Forbidden(ns is not null && !allowed(ns) ? ns : coord!, ApiRights.Read).ExecuteAsync(http);
            return;
        }
        var afterText = http.Request.Headers["Last-Event-ID"].ToString() is { Length: > 0 } id ? id : Query(http, "after");
        long after = afterText is null ? journal.LastSeq : StateApi.ParseLong(afterText, "after");

        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(ct, lifetime.ApplicationStopping);
        var token = stopping.Token;
        using var subscriber = journal.Subscribe(ns, allowed);
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        var body = http.Response.Body;
        try
        {
            await WriteAsync(body, $"retry: 2000\nevent: hello\ndata: {{\"lastSeq\":{journal.LastSeq},\"now\":{journal.Now.ToString(CultureInfo.InvariantCulture)}}}\n\n", token);
            if (after < journal.FirstRetainedSeq - 1 || after > journal.LastSeq)
            {
                // Too far behind (evicted), or ahead of this journal (the server restarted): the viewer reloads.
                await WriteAsync(body, $"event: reset\ndata: {{\"reason\":\"{(after > journal.LastSeq ? "restarted" : "behind")}\"}}\n\n", token);
                await body.FlushAsync(token);
                return;
            }
            // Backlog first; the subscription (taken before) may repeat some of it, which the id check below skips.
            var sent = after;
            foreach (var entry in journal.Entries(ns, after, int.MaxValue, allowed))
            {
                await WriteEventAsync(body, "op", entry.Seq, JsonSerializer.Serialize(entry, DashboardJson.Options), token);
                sent = entry.Seq;
            }
            await body.FlushAsync(token);

            // A native queue (PostgreSQL, Redis) keeps its tasks outside the key space the watch sees: poll its queues instead.
            using var coordination = coord is null ? null : new CoordinationWatch(journal.Inner, coord, queues is StoreQueueService ? null : queues, time, token);
            var reader = subscriber.Reader;
            while (!token.IsCancellationRequested)
            {
                var wait = reader.WaitToReadAsync(token).AsTask();
                var tick = Task.Delay(coordination is null ? KeepAlive : CoordinationDebounce, time, token);
                var done = await Task.WhenAny(wait, tick);
                if (done == wait && !await wait) break;
                var wrote = false;
                while (reader.TryRead(out var e))
                {
                    if (e.Type == "op" && e.Id <= sent) continue;
                    await WriteEventAsync(body, e.Type, e.Id, e.Json, token);
                    if (e.Type == "op") sent = e.Id;
                    wrote = true;
                }
                if (subscriber.Overflowed)
                {
                    await WriteAsync(body, "event: reset\ndata: {\"reason\":\"overflow\"}\n\n", token);
                    await body.FlushAsync(token);
                    return;
                }
                if (coordination is not null && coordination.TakeChanged())
                {
                    await WriteAsync(body, $"event: coord\ndata: {JsonSerializer.Serialize(new { ns = coord }, DashboardJson.Options)}\n\n", token);
                    wrote = true;
                }
                if (!wrote && done == tick && coordination is null) await WriteAsync(body, ": keep-alive\n\n", token);
                await body.FlushAsync(token);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The viewer left or the server is stopping.
        }
        catch (IOException)
        {
            // The connection broke.
        }
    }

    private static Task WriteEventAsync(Stream body, string type, long id, string json, CancellationToken ct) =>
        WriteAsync(body, id > 0 ? $"id: {id}\nevent: {type}\ndata: {json}\n\n" : $"event: {type}\ndata: {json}\n\n", ct);

    private static async Task WriteAsync(Stream body, string text, CancellationToken ct) =>
        await body.WriteAsync(Encoding.UTF8.GetBytes(text), ct);

    /// <summary>
    /// Watches a namespace's reserved keys (locks, queues, streams) and remembers whether anything changed. With a native
    /// queue service, whose tasks are not records, it also polls the namespace's queues (names and task counts, at most
    /// <see cref="MaxCoordinationItems"/> queues) every <see cref="NativeQueuePoll"/> and reports a difference as a change.
    /// </summary>
    private sealed class CoordinationWatch : IDisposable
    {
        private readonly CancellationTokenSource _stop;
        private int _changed;

        public CoordinationWatch(IConcordStore store, string ns, IQueueService? nativeQueues, TimeProvider time, CancellationToken token)
        {
            _stop = CancellationTokenSource.CreateLinkedTokenSource(token);
            _ = RunAsync(store, ns, _stop.Token);
            if (nativeQueues is not null) _ = PollQueuesAsync(nativeQueues, ns, time, _stop.Token);
        }

        public bool TakeChanged() => Interlocked.Exchange(ref _changed, 0) != 0;

        private async Task RunAsync(IConcordStore store, string ns, CancellationToken token)
        {
            try
            {
                await foreach (var _ in store.WatchAsync(ns, new WatchRequest { Prefix = "_sys/" }, token).ConfigureAwait(false))
                    Volatile.Write(ref _changed, 1);
            }
            catch (OperationCanceledException)
            {
            }
            catch (ConcordException)
            {
                // Compaction or overflow: the panels poll on reconnect; nothing to report here.
            }
        }

        private async Task PollQueuesAsync(IQueueService queues, string ns, TimeProvider time, CancellationToken token)
        {
            string? last = null;
            try
            {
                while (!token.IsCancellationRequested)
                {
                    try
                    {
                        var signature = new StringBuilder();
                        foreach (var name in (await queues.ListQueuesAsync(ns, null, MaxCoordinationItems, token).ConfigureAwait(false)).Queues)
                            signature.Append(name).Append('=').Append(await queues.GetStatsAsync(ns, name, token).ConfigureAwait(false)).Append('\n');
                        var now = signature.ToString();
                        if (last is not null && now != last) Volatile.Write(ref _changed, 1);
                        last = now;
                    }
                    catch (ConcordException)
                    {
                        // The backend is briefly unavailable: look again at the next tick.
                    }
                    await Task.Delay(NativeQueuePoll, time, token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _stop.Dispose();
        }
    }
}
