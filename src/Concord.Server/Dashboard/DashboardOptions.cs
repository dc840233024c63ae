namespace Concord.Server.Dashboard;

/// <summary>Settings of the dashboard and its operations journal (configuration section <c>Concord:Dashboard</c>).</summary>
internal sealed class DashboardOptions
{
    /// <summary>Serve the page at <c>/</c> and the <c>/dashboard</c> API. The journal still records when off. <value>Default: true.</value></summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Operations kept in the journal's ring buffer (the timeline and the checkers' window). <value>Default: 20,000.</value></summary>
    public int JournalCapacity { get; set; } = 20_000;

    /// <summary>Lost-update findings kept. <value>Default: 1,000.</value></summary>
    public int FindingsCapacity { get; set; } = 1_000;

    /// <summary>How often namespaces with new operations are re-checked. <value>Default: 2 s.</value></summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Time allowed for one namespace's linearizability check before its verdict is "unknown". <value>Default: 5 s.</value></summary>
    public TimeSpan CheckTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Events buffered per live (SSE) viewer before it is told to reload. <value>Default: 10,000.</value></summary>
    public int SubscriberBuffer { get; set; } = 10_000;

    public void Validate()
    {
        if (JournalCapacity < 100) throw new ArgumentException("Concord:Dashboard:JournalCapacity must be at least 100");
        if (FindingsCapacity < 10) throw new ArgumentException("Concord:Dashboard:FindingsCapacity must be at least 10");
        if (CheckInterval <= TimeSpan.Zero || CheckTimeout <= TimeSpan.Zero) throw new ArgumentException("Concord:Dashboard check interval and timeout must be positive");
        if (SubscriberBuffer < 100) throw new ArgumentException("Concord:Dashboard:SubscriberBuffer must be at least 100");
    }
}
