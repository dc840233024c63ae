namespace Concord.Engine;

/// <summary>
/// The submission side of a backend's group commit (PostgreSQL, Redis): requests queue here; the first request that
/// finds no commit loop running starts one, and the loop takes batches until the queue is empty, then ends (the next
/// request starts a new one). At most one loop runs per store.
/// </summary>
/// <typeparam name="T">A queued request.</typeparam>
/// <param name="maxBatch">Most requests per batch.</param>
/// <param name="runsAlone">True for a request that must be committed in a batch of its own.</param>
internal sealed class GroupCommitQueue<T>(int maxBatch, Func<T, bool> runsAlone)
{
    private readonly Lock _gate = new();
    private readonly Queue<T> _pending = new();
    private bool _committing;

    /// <summary>Queues <paramref name="request"/> and starts <paramref name="loop"/> unless one is running.</summary>
    /// <exception cref="StoreUnavailableException"><paramref name="stopped"/> is cancelled: the store is closed.</exception>
    public void Submit(T request, Func<Task> loop, CancellationToken stopped)
    {
        bool lead;
        lock (_gate)
        {
            if (stopped.IsCancellationRequested) throw new StoreUnavailableException("The store is closed");
            _pending.Enqueue(request);
            lead = !_committing;
            _committing = true;
        }
        // The leader runs the loop on its own thread up to the loop's first await (its first round trip): one thread-pool
        // hop less per commit for a lone writer. The loop never throws, and its continuations run off the caller's thread.
        if (lead) _ = loop();
    }

    /// <summary>
    /// The next batch, in queue order: up to <c>maxBatch</c> requests, or one request that runs alone. Empty when nothing
    /// is queued, and then the calling loop must end (unless it kept the lead with <paramref name="keepLead"/>).
    /// </summary>
    /// <param name="keepLead">Keep the loop's lead even when nothing is queued (it still has work of its own to finish).</param>
    public List<T> TakeBatch(bool keepLead = false)
    {
        var batch = new List<T>();
        lock (_gate)
        {
            while (_pending.Count > 0 && batch.Count < maxBatch && (batch.Count == 0 || (!runsAlone(batch[0]) && !runsAlone(_pending.Peek()))))
                batch.Add(_pending.Dequeue());
            if (batch.Count == 0 && !keepLead) _committing = false;
        }
        return batch;
    }
}

/// <summary>
/// One request waiting for a backend's group commit: validated, with its fingerprint and the keys and prefixes its
/// evaluation reads, and what the backend commits along with it.
/// </summary>
/// <typeparam name="TAttachment">What the backend commits with the request (a PostgreSQL commit step, a Redis commit hook).</typeparam>
internal sealed record PendingCommit<TAttachment>(string Ns, TxnRequest Request, WriteOptions Options, byte[]? Fingerprint, string[] Keys, string[] Prefixes, TAttachment? Attachment, CancellationToken CancellationToken)
    where TAttachment : class
{
    /// <summary>Completes each request of <paramref name="batch"/> with its outcome: a <see cref="TxnResult"/>, or the exception its evaluation threw.</summary>
    public static void Complete(IReadOnlyList<PendingCommit<TAttachment>> batch, object[] outcomes)
    {
        for (var i = 0; i < batch.Count; i++)
        {
            if (outcomes[i] is TxnResult result) batch[i].Done.TrySetResult(result);
            else batch[i].Done.TrySetException((Exception)outcomes[i]);
        }
    }

    /// <summary>
    /// Fails every request of <paramref name="batch"/> with <paramref name="error"/>; a cancellation or disposal caused by
    /// the store stopping (<paramref name="storeStopping"/>) becomes <see cref="StoreUnavailableException"/> "The store is closed".
    /// </summary>
    public static void Fail(IEnumerable<PendingCommit<TAttachment>> batch, Exception error, bool storeStopping)
    {
        var reported = error is OperationCanceledException or ObjectDisposedException && storeStopping ? new StoreUnavailableException("The store is closed") : error;
        foreach (var p in batch) p.Done.TrySetException(reported);
    }

    /// <summary>Completed by the commit loop with the request's result or its failure.</summary>
    public TaskCompletionSource<TxnResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Validates <paramref name="request"/> and gathers what its commit needs.</summary>
    public static PendingCommit<TAttachment> Create(string ns, TxnRequest request, WriteOptions options, int maxValueBytes, TAttachment? attachment, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        TxnEvaluator.Validate(ns, request, maxValueBytes);
        return new PendingCommit<TAttachment>(ns, request, options,
            options.IdempotencyKey is null ? null : Engine.Fingerprint.Compute(ns, request, options),
            TxnEvaluator.KeysRead(request).Distinct(StringComparer.Ordinal).ToArray(),
            TxnEvaluator.PrefixesRead(request).Distinct(StringComparer.Ordinal).ToArray(),
            attachment, cancellationToken);
    }
}
