using System.Globalization;
using System.Text.Json;
using Concord.Coordination.Streams;
using Concord.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;

namespace Concord.Server.Http;

/// <summary>
/// Event streams: <c>POST /v1/ns/{ns}/streams/{*stream}</c> appends with an expected version (409
/// <c>wrong-expected-version</c> with the current version), <c>GET …/streams/{*stream}</c> reads one stream forward or
/// backward, <c>GET …/streams</c> reads the global order, <c>GET …/events</c> subscribes as server-sent events (each
/// event's id is its position <c>REVISION:INDEX</c>, so <c>Last-Event-ID</c> resumes exactly after it), and
/// <c>…/consumers/{group}/checkpoint</c> stores consumer-group checkpoints.
/// </summary>
internal static class StreamsApi
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static void MapStreamsApi(this RouteGroupBuilder v1)
    {
        var ns = v1.MapGroup("/ns/{ns}").WithTags("Streams");
        ns.MapGet("/streams", ReadAllAsync).WithName("ReadAllStreams");
        ns.MapGet("/streams/{*stream}", ReadStreamAsync).WithName("ReadStream");
        ns.MapPost("/streams/{*stream}", AppendAsync).WithName("AppendToStream");
        ns.MapGet("/events", SubscribeAsync).WithName("SubscribeToStreams");
        ns.MapGet("/consumers/{group}/checkpoint", GetCheckpointAsync).WithName("GetCheckpoint");
        ns.MapPut("/consumers/{group}/checkpoint", SaveCheckpointAsync).WithName("SaveCheckpoint");
    }

    private static async Task<IResult> AppendAsync(HttpContext http, string ns, string stream, IStreamService streams, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out var caller) is { } denied) return denied;
        using var doc = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var body = HttpIo.Deserialize<AppendRequestDto>(doc, "Append request");
        if (body.Events is not { Count: > 0 } events) throw new HttpIo.BadInputException(400, "invalid-request", "'events' must hold at least one event");
        var result = await streams.AppendAsync(ns, stream, [.. events.Select(e => e.ToEventData())], body.DecodeExpectedVersion(), new AppendOptions
        {
            IdempotencyKey = HttpIo.ReadIdempotencyKey(http.Request),
            Agent = HttpIo.Agent(http.Request, caller),
        }, ct);
        if (result.Replayed) http.Response.Headers[HttpIo.ReplayedHeader] = "true";
        if (!result.IsAppended)
        {
            return Problems.Create(409, "wrong-expected-version", "Wrong expected version", result.Message ?? $"Stream '{stream}' is at version {result.Version}",
                new Dictionary<string, object?> { ["stream"] = stream, ["currentVersion"] = result.Version });
        }
        http.Response.Headers["Concord-Revision"] = result.Revision.ToString(CultureInfo.InvariantCulture);
        return Results.Json(AppendResponseDto.From(result), WireJson.Options, statusCode: 201);
    }

    private static async Task<IResult> ReadStreamAsync(HttpContext http, string ns, string stream, IStreamService streams, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        var q = http.Request.Query;
        var backward = ParseDirection(q["direction"].ToString()) == ReadDirection.Backward;
        var from = q["from"].Count > 0 ? StateApi.ParseLong(q["from"].ToString(), "from") : backward ? long.MaxValue : 1;
        var count = Count(q["count"].ToString(), allowZero: true);
        var info = await streams.GetStreamAsync(ns, stream, ct);
        if (info is null && !(q["count"].Count > 0 && count == 0))
            return Problems.Create(404, "stream-not-found", "Not found", $"Stream '{stream}' has no events", new Dictionary<string, object?> { ["stream"] = stream });
        var events = count == 0 || info is null ? [] : await streams.ReadStreamAsync(ns, stream, from, count, backward ? ReadDirection.Backward : ReadDirection.Forward, ct);
        return Results.Json(new StreamPageDto(stream, info?.Version ?? 0, info?.LastRevision ?? 0, [.. events.Select(RecordedEventDto.From)]), WireJson.Options);
    }

    private static async Task<IResult> ReadAllAsync(HttpContext http, string ns, IStreamService streams, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        var q = http.Request.Query;
        var direction = ParseDirection(q["direction"].ToString());
        var from = q["from"].Count > 0 ? CoordinationWire.ParsePosition(q["from"].ToString())
            : direction == ReadDirection.Backward ? StreamPosition.End : StreamPosition.Start;
        var events = await streams.ReadAllAsync(ns, from, Count(q["count"].ToString(), allowZero: false), Filter(http.Request), direction, ct);
        var end = await streams.GetEndPositionAsync(ns, ct);
        return Results.Json(new EventsPageDto([.. events.Select(RecordedEventDto.From)], end.ToString()), WireJson.Options);
    }

    private static async Task<IResult> GetCheckpointAsync(HttpContext http, string ns, string group, IStreamService streams, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        return Results.Json(new CheckpointDto((await streams.GetCheckpointAsync(ns, group, ct))?.ToString()), WireJson.Options);
    }

    private static async Task<IResult> SaveCheckpointAsync(HttpContext http, string ns, string group, IStreamService streams, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out _) is { } denied) return denied;
        using var doc = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var body = HttpIo.Deserialize<CheckpointDto>(doc, "Checkpoint");
        var saved = await streams.SaveCheckpointAsync(ns, group, CoordinationWire.ParsePosition(body.Position), ct);
        return Results.Json(new { saved }, WireJson.Options);
    }

    private static async Task<IResult> SubscribeAsync(HttpContext http, string ns, IStreamService streams, Auth auth, WatchLimiter limiter,
        TimeProvider time, IHostApplicationLifetime lifetime, CancellationToken requestAborted)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        var q = http.Request.Query;
        var filter = Filter(http.Request);
        var lastEventId = http.Request.Headers["Last-Event-ID"].ToString();
        StreamPosition after;
        if (lastEventId.Length > 0)
        {
            if (!StreamPosition.TryParse(lastEventId, out after))
                throw new HttpIo.BadInputException(400, "invalid-last-event-id", "Last-Event-ID must be 'REVISION:INDEX' as sent by this server");
        }
        else if (q["after"].ToString() is { Length: > 0 } text) after = text == "end" ? await streams.GetEndPositionAsync(ns, requestAborted) : CoordinationWire.ParsePosition(text);
        else after = StreamPosition.Start;
        if (!limiter.TryEnter())
            return Problems.Create(429, "too-many-watchers", "Too many watchers", $"This server allows {limiter.Max} concurrent watch streams");

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, lifetime.ApplicationStopping);
        var ct = stop.Token;
        var events = streams.SubscribeAsync(ns, filter, after, ct).GetAsyncEnumerator(ct);
        Task<bool>? next = null;
        try
        {
            // The first MoveNext validates (bad filter, compacted history) before the 200 is committed.
            next = events.MoveNextAsync().AsTask();
            if (next.IsFaulted) await next;
            http.Response.ContentType = "text/event-stream";
            http.Response.Headers.CacheControl = "no-cache";
            http.Response.Headers["X-Accel-Buffering"] = "no";
            await http.Response.WriteAsync($": subscribed after {after}\n\n", ct);
            await http.Response.Body.FlushAsync(ct);
            Task? tick = null;
            while (true)
            {
                while (!next.IsCompleted)
                {
                    tick ??= Task.Delay(KeepAlive, time, ct);
                    if (await Task.WhenAny(next, tick) == tick)
                    {
                        tick = null;
                        ct.ThrowIfCancellationRequested();
                        await http.Response.WriteAsync(": keep-alive\n\n", ct);
                        await http.Response.Body.FlushAsync(ct);
                    }
                }
                if (!await next) break;
                var e = events.Current;
                var json = JsonSerializer.Serialize(RecordedEventDto.From(e), WireJson.Options);
                await http.Response.WriteAsync($"id: {e.Position}\nevent: event\ndata: {json}\n\n", ct);
                await http.Response.Body.FlushAsync(ct);
                next = events.MoveNextAsync().AsTask();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client left or the server is stopping: the client resumes with Last-Event-ID.
        }
        catch (ConcordException e) when (http.Response.HasStarted)
        {
            var data = JsonSerializer.Serialize(new { type = Problems.TypeBase + e.Code, detail = e.Message }, WireJson.Options);
            try
            {
                await http.Response.WriteAsync($"event: error\ndata: {data}\n\n", CancellationToken.None);
            }
            catch (IOException)
            {
                // The client is gone too.
            }
        }
        finally
        {
            stop.Cancel();
            if (next is { IsCompleted: false })
            {
                try
                {
                    await next;
                }
                catch (Exception e) when (e is OperationCanceledException or ConcordException)
                {
                }
            }
            await events.DisposeAsync();
            limiter.Exit();
        }
        return Results.Empty;
    }

    private static StreamFilter Filter(HttpRequest request)
    {
        var q = request.Query;
        if (q["stream"].Count > 0 && q["prefix"].Count > 0) throw new HttpIo.BadInputException(400, "invalid-request", "Give 'stream' or 'prefix', not both");
        if (q["stream"].Count > 0) return StreamFilter.ForStream(q["stream"].ToString());
        return q["prefix"].Count > 0 ? StreamFilter.ForPrefix(q["prefix"].ToString()) : StreamFilter.All;
    }

    private static ReadDirection ParseDirection(string text) => text switch
    {
        "" or "forward" => ReadDirection.Forward,
        "backward" => ReadDirection.Backward,
        _ => throw new HttpIo.BadInputException(400, "invalid-request", $"'direction' must be 'forward' or 'backward' (got '{text}')"),
    };

    private static int Count(string text, bool allowZero)
    {
        if (text.Length == 0) return 100;
        var n = StateApi.ParseLong(text, "count");
        return n <= 10_000 && (allowZero || n > 0)
            ? (int)n
            : throw new HttpIo.BadInputException(400, "invalid-request", $"'count' must be between {(allowZero ? 0 : 1)} and 10000 (got {text})");
    }
}
