using System.Collections.Concurrent;
using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Linearizability;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Concord.Server.Dashboard;

/// <summary>The latest checker verdicts for one namespace.</summary>
internal sealed record NamespaceVerdict
{
    public required string Ns { get; init; }

    /// <summary>Journal time (ms) of the check.</summary>
    public required double CheckedAt { get; init; }

    /// <summary>The namespace's last journal position the check covered.</summary>
    public required long ThroughSeq { get; init; }

    /// <summary><c>ok</c> when nothing was found, else <c>anomaly</c> (or <c>unknown</c> when undecided).</summary>
    public required string Status { get; init; }

    /// <summary>The verdict in a sentence or two.</summary>
    public required string Summary { get; init; }

    public required CheckVerdict Linearizability { get; init; }

    public required CheckVerdict LostUpdates { get; init; }

    public required long Conflicts { get; init; }

    public required long Retries { get; init; }

    /// <summary>How long the check took, in milliseconds.</summary>
    public double CheckMs { get; init; }

    public IReadOnlyList<string> Notes { get; init; } = [];
}

/// <summary>One checker's verdict: <c>valid</c>, <c>invalid</c> or <c>unknown</c>, with its explanation and findings.</summary>
internal sealed record CheckVerdict(string Checker, string Verdict, string Explanation, IReadOnlyList<string> Findings, int Operations, int Keys);

/// <summary>
/// Runs the checkers over the journal: every <see cref="DashboardOptions.CheckInterval"/> for namespaces with new
/// operations, and on demand. Keeps the latest verdict per namespace and publishes each new one to live viewers.
/// </summary>
/// <remarks>
/// Two checks per namespace: linearizability of every key as a register (did the store behave atomically?), and the
/// journal's lost-update detector (did an agent silently overwrite versions it never read?). A naive agent loses
/// updates on a perfectly linearizable store — the verdicts say exactly that. Thread-safe; checks of one namespace
/// never run concurrently (one gate per service).
/// </remarks>
internal sealed class VerdictService(OperationJournal journal, DashboardOptions options, TimeProvider time, ILogger<VerdictService> log) : BackgroundService
{
    private readonly ConcurrentDictionary<string, NamespaceVerdict> _latest = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);

    public IReadOnlyList<NamespaceVerdict> Latest(Func<string, bool> allowed) =>
        [.. _latest.Values.Where(v => allowed(v.Ns)).OrderBy(v => v.Ns, StringComparer.Ordinal)];

    /// <summary>Checks <paramref name="ns"/> now (or every namespace with operations when null) and returns the verdicts.</summary>
    public async Task<IReadOnlyList<NamespaceVerdict>> CheckNowAsync(string? ns, Func<string, bool> allowed, CancellationToken cancellationToken)
    {
        var names = ns is not null ? [ns] : journal.Namespaces().Select(n => n.Ns).Where(allowed).ToList();
        var results = new List<NamespaceVerdict>();
        foreach (var name in names)
        {
            results.Add(await CheckAsync(name, cancellationToken).ConfigureAwait(false));
        }
        return results;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.CheckInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                var seen = _latest.ToDictionary(p => p.Key, p => p.Value.ThroughSeq, StringComparer.Ordinal);
                foreach (var (ns, _) in journal.ChangedSince(seen))
                {
                    // A big namespace is checked less often: at most a fifth of the time goes to checking it.
                    if (_latest.TryGetValue(ns, out var last) && journal.Now < last.CheckedAt + 4 * last.CheckMs) continue;
                    try
                    {
                        await CheckAsync(ns, stoppingToken).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        log.LogWarning(e, "Dashboard check of namespace {Namespace} failed", ns);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task<NamespaceVerdict> CheckAsync(string ns, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var snapshot = journal.Snapshot(ns);
            // CPU-bound: off the request thread, bounded by the check timeout.
            var verdict = await Task.Run(() => Check(snapshot), cancellationToken).ConfigureAwait(false);
            _latest[ns] = verdict;
            journal.Publish("verdict", ns, verdict);
            return verdict;
        }
        finally
        {
            _gate.Release();
        }
    }

    private NamespaceVerdict Check(JournalSnapshot snapshot)
    {
        var started = time.GetTimestamp();
        var (history, notes) = JournalHistory.Build(snapshot);
        var lin = LinearizabilityChecker.Check(history, new LinearizabilityOptions
        {
            Model = LinearizabilityModel.Register,
            Timeout = options.CheckTimeout,
            TimeProvider = time,
            MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount / 2),
        });
        var keys = lin.Keys.Count;
        var operations = lin.Keys.Sum(k => k.OperationCount);
        var linVerdict = new CheckVerdict("linearizability", lin.Verdict.ToWireName(), lin.Explanation,
            [.. lin.Keys.Where(k => k.Verdict != Verdict.Valid && k.Explanation is not null).Select(k => k.Explanation!).Take(20)], operations, keys);

        var findings = journal.Findings(snapshot.Ns);
        var stats = journal.Namespaces().FirstOrDefault(n => n.Ns == snapshot.Ns);
        var lostCount = stats?.LostUpdates ?? findings.Count;
        var lostKeys = findings.Select(f => f.Key).Distinct(StringComparer.Ordinal).Count();
        var lostExplanation = lostCount == 0
            ? "No lost update: every write either stated the version it was based on, was an atomic patch, or replaced only versions its agent had read."
            : $"{Plural(lostCount, "lost update", "lost updates")} on {Plural(lostKeys, "key", "keys")}: a blind write (no version stated) replaced versions its agent never read, and those agents' updates vanished without an error.";
        var lost = new CheckVerdict("lost-update", lostCount == 0 ? "valid" : "invalid", lostExplanation,
            [.. findings.TakeLast(20).Reverse().Select(f => f.Explanation)], (int)(stats?.Writes ?? 0), lostKeys);

        var status = lin.Verdict == Verdict.Invalid || lostCount > 0 ? "anomaly" : lin.Verdict == Verdict.Unknown ? "unknown" : "ok";
        var conflicts = stats?.Conflicts ?? 0;
        var retries = stats?.Retries ?? 0;
        var summary = (lostCount > 0, lin.Verdict) switch
        {
            (true, Verdict.Valid) => $"{Plural(lostCount, "lost update", "lost updates")}: blind writes silently erased versions their writers never read — yet the store was linearizable.",
            (true, _) => $"{Plural(lostCount, "lost update", "lost updates")}: blind writes silently erased versions their writers never read; linearizability is {lin.Verdict.ToWireName()}.",
            (false, Verdict.Valid) when conflicts > 0 => $"No update lost: {Plural((int)conflicts, "stale write was", "stale writes were")} refused as conflicts{(retries > 0 ? $" and {Plural((int)retries, "retry", "retries")} recomputed from the fresh value" : "")}. Linearizable.",
            (false, Verdict.Valid) => "No update lost. Linearizable.",
            (false, Verdict.Invalid) => "NOT linearizable: see the explanation.",
            _ => "Undecided: the linearizability check did not finish in time; no lost update.",
        };
        return new NamespaceVerdict
        {
            Ns = snapshot.Ns,
            CheckedAt = journal.Now,
            ThroughSeq = snapshot.LastSeq,
            Status = status,
            Summary = summary,
            Linearizability = linVerdict,
            LostUpdates = lost,
            Conflicts = conflicts,
            Retries = retries,
            Notes = notes,
            CheckMs = Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 1),
        };
    }

    private static string Plural(long n, string one, string many) => $"{n} {(n == 1 ? one : many)}";

    public override void Dispose()
    {
        _gate.Dispose();
        base.Dispose();
    }
}
