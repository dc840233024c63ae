using System.Globalization;
using System.Text.Json;
using Concord.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;

namespace Concord.Server.Http;

/// <summary>Caps concurrent watch streams for one server instance.</summary>
internal sealed class WatchLimiter(int max)
{
    private int _active;

    public int Max => max;

    public bool TryEnter()
    {
        if (Interlocked.Increment(ref _active) <= max) return true;
        Interlocked.Decrement(ref _active);
        return false;
    }

    public void Exit() => Interlocked.Decrement(ref _active);
}

/// <summary>
/// <c>GET /v1/ns/{ns}/watch</c>: the change feed as server-sent events. Each event's id is <c>REVISION.INDEX</c>
/// (index among this stream's events of that revision), so a client resuming with <c>Last-Event-ID</c> and the same
/// key/prefix neither misses nor repeats an event, even when one transaction changed several keys.
/// </summary>
internal static class WatchApi
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static void MapWatchApi(this RouteGroupBuilder v1) =>
        v1.MapGet("/ns/{ns}/watch", WatchAsync).WithTags("Watch").WithName("Watch");

    private static async Task<IResult> WatchAsync(HttpContext http, string ns, IConcordStore store, Auth auth, WatchLimiter limiter,
        TimeProvider time, IHostApplicationLifetime lifetime, CancellationToken requestAborted)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        var q = http.Request.Query;
        var from = q["fromRevision"].Count > 0 ? StateApi.ParseLong(q["fromRevision"].ToString(), "fromRevision") : 0;
        var skipThrough = -1;
        var lastEventId = http.Request.Headers["Last-Event-ID"].ToString();
        if (lastEventId.Length > 0)
        {
            var parts = lastEventId.Split('.');
            if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var rev) || rev < 1
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                throw new HttpIo.BadInputException(400, "invalid-last-event-id", "Last-Event-ID must be 'REVISION.INDEX' as sent by this server");
            from = rev;
            skipThrough = index;
        }
        var request = new WatchRequest { Key = q["key"].Count > 0 ? q["key"].ToString() : null, Prefix = q["prefix"].ToString(), FromRevision = from };
        if (!limiter.TryEnter())
            return Problems.Create(429, "too-many-watchers", "Too many watchers", $"This server allows {limiter.Max} concurrent watch streams");

        // A watch never ends on its own: end it when the client leaves or the server begins shutting down, so a graceful
        // shutdown drains ordinary requests without waiting for every subscriber.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, lifetime.ApplicationStopping);
        var ct = stop.Token;
        var changes = store.WatchAsync(ns, request, ct).GetAsyncEnumerator(ct);
        Task<bool>? next = null;
        try
        {
            // The first MoveNext validates (bad key, compacted revision) before we commit to a 200 response; a fault
            // surfaces here as a problem+json status.
            next = changes.MoveNextAsync().AsTask();
            if (next.IsFaulted) await next;
            // The subscription is registered by now: every change after this revision will be delivered. A client whose
            // "from now" stream drops before its first event resumes from here.
            http.Response.Headers["Concord-Revision"] = (await store.GetRevisionAsync(ct)).ToString(CultureInfo.InvariantCulture);

            http.Response.ContentType = "text/event-stream";
            http.Response.Headers.CacheControl = "no-cache";
            http.Response.Headers["X-Accel-Buffering"] = "no";
            await http.Response.WriteAsync(": watching\n\n", ct);
            await http.Response.Body.FlushAsync(ct);
            long currentRevision = -1;
            var index = 0;
            Task? tick = null;
            while (true)
            {
                while (!next.IsCompleted)
                {
                    // One keep-alive timer at a time, reused until it fires (not one per event).
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
                var change = changes.Current;
                if (change.Revision != currentRevision)
                {
                    currentRevision = change.Revision;
                    index = 0;
                }
                else index++;
                if (!(change.Revision == from && index <= skipThrough))
                {
                    var json = JsonSerializer.Serialize(new ChangeEventDto(change.Namespace, change.Kind, RecordDto.From(change.Record)!), WireJson.Options);
                    await http.Response.WriteAsync($"id: {change.Revision}.{index}\nevent: {JsonNamingPolicy.CamelCase.ConvertName(change.Kind.ToString())}\ndata: {json}\n\n", ct);
                    await http.Response.Body.FlushAsync(ct);
                }
                next = changes.MoveNextAsync().AsTask();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away, or the server is shutting down: a client reconnects with Last-Event-ID.
        }
        catch (ConcordException e) when (http.Response.HasStarted)
        {
            // Overflow (too slow a consumer) or the store closing: tell the client where to resume, then end the stream.
            var resume = e is WatchOverflowException w ? w.ResumeRevision : (long?)null;
            var data = JsonSerializer.Serialize(new { type = Problems.TypeBase + e.Code, detail = e.Message, resumeRevision = resume }, WireJson.Options);
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
            // An async iterator cannot be disposed while a MoveNext is pending: let the cancelled one finish first.
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
            await changes.DisposeAsync();
            limiter.Exit();
        }
        return Results.Empty;
    }
}
