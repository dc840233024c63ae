using System.Globalization;
using System.Text.Json;
using Concord.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Concord.Server.Http;

/// <summary>
/// <c>GET /v1/ns/{ns}/watch</c>: the change feed as server-sent events. Each event's id is <c>REVISION.INDEX</c>
/// (index within the revision), so a client resuming with <c>Last-Event-ID</c> neither misses nor repeats an event,
/// even when one transaction changed several keys.
/// </summary>
internal static class WatchApi
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);
    private static int s_active;

    public static void MapWatchApi(this RouteGroupBuilder v1) =>
        v1.MapGet("/ns/{ns}/watch", WatchAsync).WithTags("Watch").WithName("Watch");

    private static async Task<IResult> WatchAsync(HttpContext http, string ns, IConcordStore store, Auth auth, ConcordServerOptions options, TimeProvider time, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        var q = http.Request.Query;
        var from = q["fromRevision"].Count > 0 ? StateApi.ParseLong(q["fromRevision"].ToString(), "fromRevision") : 0;
        var skipThrough = -1;
        var lastEventId = http.Request.Headers["Last-Event-ID"].ToString();
        if (lastEventId.Length > 0)
        {
            var parts = lastEventId.Split('.');
            if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var rev) || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                throw new HttpIo.BadInputException(400, "invalid-request", "Last-Event-ID must be 'REVISION.INDEX' as sent by this server");
            from = rev;
            skipThrough = index;
        }
        var request = new WatchRequest { Key = q["key"].Count > 0 ? q["key"].ToString() : null, Prefix = q["prefix"].ToString(), FromRevision = from };
        if (Interlocked.Increment(ref s_active) > options.MaxWatchers)
        {
            Interlocked.Decrement(ref s_active);
            return Problems.Create(429, "too-many-watchers", "Too many watchers", $"This server allows {options.MaxWatchers} concurrent watch streams");
        }
        try
        {
            await using var changes = store.WatchAsync(ns, request, ct).GetAsyncEnumerator(ct);
            // Validate (compaction, bad keys) before committing to a 200 response.
            var next = changes.MoveNextAsync().AsTask();
            await Task.WhenAny(next, Task.Delay(TimeSpan.FromMilliseconds(50), time, ct));
            if (next.IsFaulted) await next;

            http.Response.ContentType = "text/event-stream";
            http.Response.Headers.CacheControl = "no-cache";
            http.Response.Headers["X-Accel-Buffering"] = "no";
            await http.Response.WriteAsync(": watching\n\n", ct);
            await http.Response.Body.FlushAsync(ct);
            long currentRevision = -1;
            var index = 0;
            while (true)
            {
                while (!next.IsCompleted)
                {
                    var tick = Task.Delay(KeepAlive, time, ct);
                    if (await Task.WhenAny(next, tick) == tick)
                    {
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
            // The client went away.
        }
        catch (WatchOverflowException e) when (http.Response.HasStarted)
        {
            await http.Response.WriteAsync($"event: error\ndata: {JsonSerializer.Serialize(new { type = Problems.TypeBase + e.Code, detail = e.Message, resumeRevision = e.ResumeRevision })}\n\n", CancellationToken.None);
        }
        finally
        {
            Interlocked.Decrement(ref s_active);
        }
        return Results.Empty;
    }
}
