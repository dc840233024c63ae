using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Concord.Coordination.Queues;
using Concord.Wire;

namespace Concord.Client;

/// <summary>
/// <see cref="IQueueService"/> over the Concord HTTP API (<c>/v1/ns/{ns}/queues/…</c>). Thread-safe. Arguments are checked
/// before sending with the same rules (and messages) as every queue implementation; limits that depend on the server's
/// settings (payload size, default attempts) are checked by the server.
/// </summary>
/// <remarks>
/// <see cref="PrepareEnqueueAsync"/> and <see cref="PrepareAckAsync"/> are prepared by the server and return operations on
/// the queue's reserved <c>_sys/</c> keys for the caller's own transaction: committing them over HTTP needs an API key
/// with admin rights.
/// Mutations are retried on transient failures only where a retry cannot apply twice (acks and nacks are idempotent per
/// receipt; enqueues with a dedup id). A lease wait holds one request open; the server caps it at 60 seconds, so a
/// longer wait may return empty after 60 seconds (call again).
/// </remarks>
public sealed class HttpQueueService : IQueueService
{
    private readonly ConcordHttpStore _http;

    /// <summary>Creates the client. The service does not dispose <paramref name="http"/>.</summary>
    public HttpQueueService(HttpClient http, ConcordClientOptions? options = null) => _http = new ConcordHttpStore(http, options);

    private static string Url(string ns, string queue, string rest = "") => $"v1/ns/{Uri.EscapeDataString(ns)}/queues/{Uri.EscapeDataString(queue)}{rest}";

    /// <inheritdoc />
    public async ValueTask<EnqueueResult> EnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new EnqueueOptions();
        QueueRules.ValidateQueue(ns, queue);
        QueueRules.ValidatePayload(payload);
        QueueRules.ValidateEnqueueOptions(options);
        var body = new EnqueueRequestDto
        {
            Payload = payload,
            DedupId = options.DedupId,
            Group = options.Group,
            DelayMs = (long)options.Delay.TotalMilliseconds,
            Priority = options.Priority,
            MaxAttempts = options.MaxAttempts,
        };
        using var response = await SendAsync(Url(ns, queue, "/tasks"), body, options.Agent, options.DedupId is not null, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.TooManyRequests
            && await ConcordHttpStore.ReadProblemAsync(response, cancellationToken).ConfigureAwait(false) is { Code: "queue-full" })
            return new EnqueueResult(EnqueueStatus.QueueFull, "", 0);
        return await ReadAsync<EnqueueResult>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<PreparedEnqueue> PrepareEnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new EnqueueOptions();
        QueueRules.ValidateQueue(ns, queue);
        QueueRules.ValidatePayload(payload);
        QueueRules.ValidateEnqueueOptions(options);
        var body = new EnqueueRequestDto
        {
            Payload = payload,
            DedupId = options.DedupId,
            Group = options.Group,
            DelayMs = (long)options.Delay.TotalMilliseconds,
            Priority = options.Priority,
            MaxAttempts = options.MaxAttempts,
        };
        // Prepared by the server, with its clock (visibility and dedup windows must not depend on the client's clock).
        var dto = await PostAsync<PreparedOpsDto>(Url(ns, queue, "/prepare/enqueue"), body, options.Agent, retryable: true, cancellationToken).ConfigureAwait(false);
        return new PreparedEnqueue(dto.TaskId!, FromDto(dto.Ops));
    }

    private static IReadOnlyList<TxnOp> FromDto(List<TxnOpDto> ops) => WireMapper.FromDto(new TxnRequestDto { Then = ops }).Then;

    /// <inheritdoc />
    public async ValueTask<LeaseResult> LeaseAsync(string ns, string queue, string consumer, TimeSpan visibilityTimeout, TimeSpan wait = default, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateQueue(ns, queue);
        QueueRules.ValidateLease(consumer, visibilityTimeout, wait);
        var body = new LeaseRequestDto { Consumer = consumer, VisibilityMs = (long)visibilityTimeout.TotalMilliseconds, WaitMs = (long)wait.TotalMilliseconds };
        // A lease whose reply is lost leaves a task leased until its visibility timeout: not retried.
        var dto = await PostAsync<LeaseResponseDto>(Url(ns, queue, "/lease"), body, consumer, retryable: false, cancellationToken).ConfigureAwait(false);
        return new LeaseResult(dto.Lease is { } lease ? lease with { Namespace = ns } : null, dto.NextVisibleAt);
    }

    /// <inheritdoc />
    public async ValueTask<AckResult> AckAsync(QueueLease lease, IReadOnlyList<TxnOp>? effects = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var effectDtos = effects is { Count: > 0 } ? WireMapper.ToDto(new TxnRequest { Then = effects }).Then : null;
        var body = new ReceiptRequestDto { TaskId = lease.TaskId, Receipt = lease.Receipt, Consumer = lease.Consumer, Effects = effectDtos };
        using var response = await SendAsync(Url(lease.Namespace, lease.Queue, "/ack"), body, lease.Consumer, retryable: true, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            var ok = await ReadAsync<AckResponseDto>(response, cancellationToken).ConfigureAwait(false);
            return new AckResult(AckStatus.Acked, ok.Revision, null, -1, null) { Replayed = ok.Replayed };
        }
        var problem = await ConcordHttpStore.ReadProblemAsync(response, cancellationToken).ConfigureAwait(false);
        switch (problem?.Code)
        {
            case "stale-receipt":
                return new AckResult(AckStatus.StaleReceipt, 0, null, -1, problem.Detail);
            case "effect-conflict":
                var root = problem.Root;
                var conflict = root.TryGetProperty("conflict", out var c) && c.ValueKind == JsonValueKind.Object ? c.Deserialize<WriteResultDto>(WireJson.Options)?.ToResult() : null;
                var index = root.TryGetProperty("effectIndex", out var i) && i.TryGetInt32(out var n) ? n : -1;
                var revision = root.TryGetProperty("revision", out var r) && r.TryGetInt64(out var rv) ? rv : 0;
                return new AckResult(AckStatus.EffectConflict, revision, conflict, index, problem.Detail);
            default:
                throw ConcordHttpStore.ToException(response.StatusCode, problem);
        }
    }

    /// <inheritdoc />
    public async ValueTask<PreparedQueueOps> PrepareAckAsync(QueueLease lease, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var body = new ReceiptRequestDto { TaskId = lease.TaskId, Receipt = lease.Receipt, Consumer = lease.Consumer };
        var dto = await PostAsync<PreparedOpsDto>(Url(lease.Namespace, lease.Queue, "/prepare/ack"), body, lease.Consumer, retryable: true, cancellationToken).ConfigureAwait(false);
        return new PreparedQueueOps(FromDto(dto.Ops), dto.Stale, dto.Message);
    }

    /// <inheritdoc />
    public async ValueTask<NackResult> NackAsync(QueueLease lease, string? reason = null, TimeSpan delay = default, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        QueueRules.ValidateNackDelay(delay);
        var body = new ReceiptRequestDto { TaskId = lease.TaskId, Receipt = lease.Receipt, Consumer = lease.Consumer, Reason = reason, DelayMs = (long)delay.TotalMilliseconds };
        using var response = await SendAsync(Url(lease.Namespace, lease.Queue, "/nack"), body, lease.Consumer, retryable: true, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode) return await ReadAsync<NackResult>(response, cancellationToken).ConfigureAwait(false);
        var problem = await ConcordHttpStore.ReadProblemAsync(response, cancellationToken).ConfigureAwait(false);
        return problem?.Code == "stale-receipt"
            ? new NackResult(NackStatus.StaleReceipt, 0, problem.Detail)
            : throw ConcordHttpStore.ToException(response.StatusCode, problem);
    }

    /// <inheritdoc />
    public async ValueTask<ExtendResult> ExtendAsync(QueueLease lease, TimeSpan visibilityTimeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        QueueRules.ValidateVisibility(visibilityTimeout);
        var body = new ReceiptRequestDto { TaskId = lease.TaskId, Receipt = lease.Receipt, Consumer = lease.Consumer, VisibilityMs = (long)visibilityTimeout.TotalMilliseconds };
        using var response = await SendAsync(Url(lease.Namespace, lease.Queue, "/extend"), body, lease.Consumer, retryable: true, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            var ok = await ReadAsync<ExtendResponseDto>(response, cancellationToken).ConfigureAwait(false);
            return new ExtendResult(lease with { Deadline = ok.Deadline, Revision = ok.Revision }, null);
        }
        var problem = await ConcordHttpStore.ReadProblemAsync(response, cancellationToken).ConfigureAwait(false);
        return problem?.Code == "stale-receipt"
            ? new ExtendResult(null, problem.Detail)
            : throw ConcordHttpStore.ToException(response.StatusCode, problem);
    }

    /// <inheritdoc />
    public async ValueTask<int> ReclaimExpiredAsync(string ns, string queue, CancellationToken cancellationToken = default)
    {
        using var doc = await PostAsync<JsonDocument>(Url(ns, queue, "/reclaim"), new { }, null, retryable: true, cancellationToken).ConfigureAwait(false);
        return doc.RootElement.GetProperty("reclaimed").GetInt32();
    }

    /// <inheritdoc />
    public async ValueTask<QueueTask?> GetTaskAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        using var response = await _http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, Url(ns, queue, "/tasks/" + Uri.EscapeDataString(taskId))), cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            var problem = await ConcordHttpStore.ReadProblemAsync(response, cancellationToken).ConfigureAwait(false);
            if (problem?.Code == "task-not-found") return null;
            throw ConcordHttpStore.ToException(response.StatusCode, problem);
        }
        return await ReadAsync<QueueTask>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<QueueTask>> ListDeadLettersAsync(string ns, string queue, int limit = 100, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateDeadLetterLimit(limit);
        return await GetAsync<List<QueueTask>>(Url(ns, queue, $"/dead?limit={limit}"), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> RequeueDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        using var doc = await PostAsync<JsonDocument>(Url(ns, queue, $"/dead/{Uri.EscapeDataString(taskId)}/requeue"), new { }, null, retryable: false, cancellationToken).ConfigureAwait(false);
        return doc.RootElement.GetProperty("requeued").GetBoolean();
    }

    /// <inheritdoc />
    public async ValueTask<bool> DeleteDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        using var response = await _http.SendAsync(() => new HttpRequestMessage(HttpMethod.Delete, Url(ns, queue, $"/dead/{Uri.EscapeDataString(taskId)}")), cancellationToken).ConfigureAwait(false);
        using var doc = await ReadAsync<JsonDocument>(response, cancellationToken).ConfigureAwait(false);
        return doc.RootElement.GetProperty("deleted").GetBoolean();
    }

    /// <inheritdoc />
    public async ValueTask<QueueStats> GetStatsAsync(string ns, string queue, CancellationToken cancellationToken = default) =>
        await GetAsync<QueueStats>(Url(ns, queue), cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<QueueListPage> ListQueuesAsync(string ns, string? after = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateListQueues(ns, after, limit);
        var query = after is null ? $"?limit={limit}" : $"?limit={limit}&after={Uri.EscapeDataString(after)}";
        return await GetAsync<QueueListPage>($"v1/ns/{Uri.EscapeDataString(ns)}/queues{query}", cancellationToken).ConfigureAwait(false);
    }

    // ------------------------------------------------------------------ plumbing

    private Task<HttpResponseMessage> SendAsync(string url, object body, string? agent, bool retryable, CancellationToken cancellationToken)
    {
        var json = JsonSerializer.Serialize(body, body.GetType(), WireJson.Options);
        return _http.SendAsync(() =>
        {
            var m = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            if (agent is not null) m.Headers.TryAddWithoutValidation("Concord-Agent", ConcordHttpStore.EncodeHeader(agent));
            return m;
        }, cancellationToken, retryable);
    }

    private async Task<T> PostAsync<T>(string url, object body, string? agent, bool retryable, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(url, body, agent, retryable, cancellationToken).ConfigureAwait(false);
        return await ReadAsync<T>(response, cancellationToken).ConfigureAwait(false);
    }

    private async Task<T> GetAsync<T>(string url, CancellationToken cancellationToken)
    {
        using var response = await _http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, url), cancellationToken).ConfigureAwait(false);
        return await ReadAsync<T>(response, cancellationToken).ConfigureAwait(false);
    }

    internal static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        await ConcordHttpStore.ThrowIfErrorAsync(response, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadFromJsonAsync<T>(WireJson.Options, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidRequestException($"empty response from {response.RequestMessage?.RequestUri}");
    }
}
