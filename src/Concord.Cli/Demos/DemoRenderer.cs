using System.Globalization;
using Concord.Lab.Scenarios;
using Spectre.Console;

namespace Concord.Cli.Demos;

/// <summary>Human-readable demo output: a short story, one table per mode, a summary.</summary>
internal static class DemoRenderer
{
    private const string Ok = "[green]✓[/]";
    private const string Bad = "[red]✗[/]";

    public static void RenderAccount(IAnsiConsole console, AccountDemoReport report, DemoSettings settings, TimeSpan wall)
    {
        var scenario = new AccountScenario(report.Seed);
        console.Write(new Rule("[bold]Concord demo · account[/]").LeftJustified());
        console.MarkupLine(
            $"Three agents update account [bold]acct-42[/] (key {Esc(report.Key)}) at the same time. Each reads it, thinks 0.2–2 s (an LLM call; " +
            "virtual time, so it costs nothing) and writes its own field. Then a downstream [bold]risk[/] agent reads the account and scores it.");
        console.MarkupLine($"[grey]Seed {report.Seed} · {EngineText(settings)}[/]");
        console.WriteLine();

        var plan = NewTable("agent", "starts", "thinks", "decides", "because");
        plan.Columns[1].RightAligned();
        plan.Columns[2].RightAligned();
        for (var i = 0; i < AccountScenario.Updates.Count; i++)
        {
            var u = AccountScenario.Updates[i];
            var s = scenario.Schedules[i];
            plan.AddRow(Esc(u.Agent), Seconds(s.StartAfter.TotalMilliseconds), Seconds(s.Think.TotalMilliseconds),
                $"{Esc(u.Field)} = \"{Esc(u.Value)}\"", $"[grey]{Esc(u.Reason)}[/]");
        }
        console.Write(plan);

        foreach (var run in report.Modes)
        {
            console.WriteLine();
            console.Write(new Rule($"[bold]{ModeName(run.Mode)}[/]: {Esc(AccountModeText(run.Mode))}").LeftJustified());
            console.Write(AgentTable(run));
            switch (run.Mode)
            {
                case ConcurrencyMode.Naive:
                    RenderNaiveVerdict(console, run, report.NaiveInStrictMode);
                    break;
                case ConcurrencyMode.Optimistic:
                    console.MarkupLine(run.Kept == run.Agents.Count
                        ? $"{Ok} {run.Kept} of {run.Agents.Count} updates kept; {Plural(run.Conflicts, "stale write was", "stale writes were")} refused (version conflict) and recomputed on the fresh record."
                        : $"{Bad} {run.Kept} of {run.Agents.Count} updates kept: an agent ran out of retries ({run.Refused} refused, none lost silently).");
                    break;
                case ConcurrencyMode.Patch:
                    console.MarkupLine(run.Kept == run.Agents.Count
                        ? $"{Ok} {run.Kept} of {run.Agents.Count} updates kept, {Plural(run.Conflicts, "conflict", "conflicts")}: each agent patched only its own field."
                        : $"{Bad} {run.Kept} of {run.Agents.Count} updates kept.");
                    break;
            }
            RenderRisk(console, run);
        }

        if (report.Modes.Count > 1)
        {
            console.WriteLine();
            console.Write(new Rule("[bold]summary[/]").LeftJustified());
            var summary = NewTable("mode", "kept", "lost", "conflicts", "final", "risk verdict");
            foreach (var run in report.Modes)
            {
                summary.AddRow(
                    ModeName(run.Mode),
                    $"{(run.Kept == run.Agents.Count ? Ok : Bad)} {run.Kept}/{run.Agents.Count}",
                    run.Lost.Count == 0 ? "0" : $"[red]{run.Lost.Count}[/]",
                    run.Conflicts.ToString(CultureInfo.InvariantCulture),
                    $"v{run.FinalVersion}",
                    run.Risk.Correct ? $"{Ok} {run.Risk.Verdict}" : $"{Bad} {run.Risk.Verdict} [grey](should be {run.Risk.ExpectedVerdict})[/]");
            }
            console.Write(summary);
        }
        Footer(console, settings, report.Modes.Sum(m => m.VirtualMs) + (report.NaiveInStrictMode?.VirtualMs ?? 0), wall);
    }

    private static void RenderNaiveVerdict(IAnsiConsole console, AccountRun run, AccountRun? strict)
    {
        if (run.Lost.Count == 0)
        {
            console.MarkupLine($"{Ok} This seed's timing kept every update: the agents happened not to overlap. Naive code is still wrong, only lucky; try another --seed.");
        }
        else
        {
            console.MarkupLine($"{Bad} [red]{run.Lost.Count} of {run.Agents.Count} updates lost silently[/] (every agent was told its write succeeded):");
            Bullets(console, run.Lost.Select(l => Esc(l.Explanation)));
        }
        var fields = string.Join(", ", AccountScenario.Updates.Select(u => $"{u.Field}={Show(AccountScenario.FieldOf(run.Final, u.Field))}"));
        console.MarkupLine($"[grey]Final record v{run.FinalVersion}, written by {Esc(run.FinalWriter ?? "?")}: {Esc(fields)}[/]");
        if (strict is not null)
        {
            var refused = strict.Agents.Where(a => a.Conflict == ConflictKind.BlindWriteRefused).Select(a => a.Agent).ToList();
            console.MarkupLine(refused.Count == strict.Agents.Count && strict.Lost.Count == 0
                ? $"[yellow]In strict mode (the server default) these blind writes are refused:[/] {Esc(Join(refused))} each got BlindWriteRefused " +
                  "(HTTP 428), so nothing is lost silently: a refused agent re-reads and retries (that is the optimistic mode)."
                : $"{Bad} In strict mode {refused.Count} of {strict.Agents.Count} blind writes were refused and {strict.Lost.Count} updates were lost.");
        }
    }

    private static void RenderRisk(IAnsiConsole console, AccountRun run)
    {
        var r = run.Risk;
        var saw = $"status={Show(r.Status)}, fees={Show(r.Fees)}, compliance={Show(r.Compliance)}";
        console.MarkupLine(r.Correct
            ? $"Risk agent saw {Esc(saw)} → [bold]{Esc(r.Verdict)}[/] risk ({Esc(r.Reason)}): {Ok} correct."
            : $"Risk agent saw {Esc(saw)} → [bold]{Esc(r.Verdict)}[/] risk ({Esc(r.Reason)}): {Bad} [red]wrong verdict[/], with every update applied it is {Esc(r.ExpectedVerdict)}. It reasoned confidently over corrupted state.");
    }

    private static Table AgentTable(AccountRun run)
    {
        var table = NewTable("agent", "read", "wrote", "attempts", "outcome");
        table.Columns[3].RightAligned();
        foreach (var a in run.Agents)
        {
            var wrote = a.Applied ? $"v{a.WroteVersion} at {Seconds(a.DoneMs)}" : $"[yellow]refused[/] at {Seconds(a.DoneMs)}";
            string outcome;
            if (a.Kept)
            {
                outcome = $"{Ok} kept";
            }
            else if (!a.Applied)
            {
                outcome = $"{Bad} refused: {a.Conflict}";
            }
            else
            {
                var lost = run.Lost.FirstOrDefault(l => l.Agent == a.Agent);
                outcome = lost is null ? $"{Bad} lost" : $"{Bad} [red]lost[/]: overwritten by {Esc(lost.OverwrittenBy)} at v{lost.OverwrittenAtVersion}";
            }
            var attempts = a.Attempts.ToString(CultureInfo.InvariantCulture) + (a.Conflicts > 0 && a.Applied ? $" [grey]({Plural(a.Conflicts, "conflict", "conflicts")})[/]" : "");
            table.AddRow(Esc(a.Agent), $"v{a.ReadVersion} at {Seconds(a.StartMs)}", wrote, attempts, outcome);
        }
        return table;
    }

    public static void RenderCounter(IAnsiConsole console, CounterDemoReport report, DemoSettings settings, TimeSpan wall)
    {
        console.Write(new Rule("[bold]Concord demo · counter[/]").LeftJustified());
        console.MarkupLine(
            $"{report.Agents} agents each add 1 to [bold]{Esc(report.Key)}[/] {report.Increments} times, with 1–20 ms of work between " +
            "increments and a 1–10 ms think between reading the counter and writing it (virtual time).");
        console.MarkupLine($"[grey]Seed {report.Seed} · {EngineText(settings)}[/]");
        console.WriteLine();
        var table = NewTable("mode", "how", "expected", "actual", "lost", "retries");
        for (var i = 2; i <= 5; i++) table.Columns[i].RightAligned();
        foreach (var run in report.Modes)
        {
            table.AddRow(
                ModeName(run.Mode),
                Esc(CounterModeText(run.Mode)),
                run.Expected.ToString(CultureInfo.InvariantCulture),
                run.Actual.ToString(CultureInfo.InvariantCulture),
                run.Lost == 0 ? $"0 {Ok}" : $"[red]{run.Lost}[/] {Bad}",
                run.Mode == ConcurrencyMode.Optimistic ? run.Conflicts.ToString(CultureInfo.InvariantCulture) : "[grey]–[/]");
        }
        console.Write(table);
        foreach (var run in report.Modes)
        {
            var line = run.Mode switch
            {
                ConcurrencyMode.Naive when run.Lost > 0 =>
                    $"{Bad} naive: {run.Writes} writes succeeded but the counter reads {run.Actual}: {run.Lost} increments ({Percent(run.Lost, run.Expected)}) were silently overwritten by agents holding a stale read.",
                ConcurrencyMode.Naive => $"{Ok} naive: no increment lost with this seed, by luck of timing.",
                ConcurrencyMode.Optimistic when run.GaveUp > 0 =>
                    $"{Bad} optimistic: {run.GaveUp} increments gave up after {CounterScenario.CasRetry.MaxAttempts} attempts (reported to the agent, not lost silently).",
                ConcurrencyMode.Optimistic =>
                    $"{Ok} optimistic: every stale compare-and-swap was refused and retried ({run.Conflicts} times; the unluckiest increment took {run.MaxAttempts} attempts); nothing lost.",
                _ => $"{Ok} patch: the store adds 1 atomically, so there is nothing to race on and nothing to retry.",
            };
            console.MarkupLine(line);
        }
        Footer(console, settings, report.Modes.Sum(m => m.VirtualMs), wall);
    }

    public static void RenderAgentScenario(IAnsiConsole console, AgentDemoReport report, DemoSettings settings, TimeSpan wall)
    {
        var scenario = AgentScenarios.Create(report.Scenario, report.Seed);
        console.Write(new Rule($"[bold]Concord demo · {Esc(report.Scenario)}[/]: {Esc(report.Title)}").LeftJustified());
        console.MarkupLine(Esc(report.Story));
        console.MarkupLine($"[grey]Seed {report.Seed} · {EngineText(settings)} · agents run on the Concord agent runtime in virtual time[/]");
        foreach (var run in report.Modes)
        {
            console.WriteLine();
            var safe = scenario.IsSafe(run.Mode);
            console.Write(new Rule($"[bold]{ModeName(run.Mode)}[/]{(safe ? "" : " [grey](unsafe)[/]")}").LeftJustified());
            var table = NewTable("agent", "what it did");
            foreach (var a in run.Agents) table.AddRow($"{(a.Ok ? Ok : Bad)} {Esc(a.Agent)}", Esc(a.Did));
            console.Write(table);
            if (run.Lost.Count > 0)
            {
                console.MarkupLine($"{Bad} [red]Lost or broken ({run.Lost.Count}):[/]");
                Bullets(console, run.Lost.Select(Esc));
                console.MarkupLine($"[yellow]Why:[/] {Esc(run.Explanation)}");
            }
            else
            {
                console.MarkupLine($"{Ok} Nothing lost. [green]What prevented it:[/] {Esc(run.Explanation)}");
            }
            var d = run.Downstream;
            console.MarkupLine(d.Correct
                ? $"Downstream [bold]{Esc(d.Agent)}[/] saw {Esc(d.Saw)} → {Esc(d.Output)}: {Ok} correct."
                : $"Downstream [bold]{Esc(d.Agent)}[/] saw {Esc(d.Saw)} → [bold]{Esc(d.Output)}[/]: {Bad} [red]wrong[/], it should be: {Esc(d.Expected)}. It trusted corrupted state.");
        }
        if (report.Modes.Count > 1)
        {
            console.WriteLine();
            console.Write(new Rule("[bold]summary[/]").LeftJustified());
            var summary = NewTable("mode", "lost", "conflicts handled", "downstream");
            foreach (var run in report.Modes)
            {
                summary.AddRow(ModeName(run.Mode), run.Lost.Count == 0 ? $"0 {Ok}" : $"[red]{run.Lost.Count}[/] {Bad}",
                    run.Conflicts.ToString(CultureInfo.InvariantCulture), run.Downstream.Correct ? $"{Ok} correct" : $"{Bad} misled");
            }
            console.Write(summary);
        }
        Footer(console, settings, report.Modes.Sum(m => m.VirtualMs), wall);
    }

    private static void Footer(IAnsiConsole console, DemoSettings settings, long virtualMs, TimeSpan wall)
    {
        console.WriteLine();
        console.MarkupLine($"[grey]Took {wall.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s for {Seconds(virtualMs)} of virtual agent time.[/]");
        console.MarkupLine($"[grey]Replay exactly: {Esc(settings.ReplayCommand)} · machine-readable: add --json · scenarios and modes: concord demo --help[/]");
    }

    /// <summary>A bullet list whose wrapped lines stay indented under their text.</summary>
    private static void Bullets(IAnsiConsole console, IEnumerable<string> markupItems)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap().PadLeft(2).PadRight(1)).AddColumn();
        foreach (var item in markupItems) grid.AddRow(new Markup("•"), new Markup(item));
        console.Write(grid);
    }

    private static Table NewTable(params string[] headers)
    {
        var table = new Table().Border(TableBorder.Rounded).BorderColor(Color.Grey);
        foreach (var h in headers) table.AddColumn(new TableColumn($"[bold]{Esc(h)}[/]"));
        return table;
    }

    private static string AccountModeText(ConcurrencyMode mode) => mode switch
    {
        ConcurrencyMode.Naive => "read the record, think, write the whole record back (blind put)",
        ConcurrencyMode.Optimistic => "compare-and-swap, recomputed on conflict (UpdateAsync)",
        _ => "atomic patch of only the agent's own field",
    };

    private static string CounterModeText(ConcurrencyMode mode) => mode switch
    {
        ConcurrencyMode.Naive => "read, think, put n+1 (blind)",
        ConcurrencyMode.Optimistic => "CAS loop (UpdateAsync)",
        _ => "atomic increment patch",
    };

    private static string ModeName(ConcurrencyMode mode) => mode.ToString().ToLowerInvariant();

    private static string EngineText(DemoSettings settings) => settings.ServedAt is { } url
        ? $"agents over HTTP against {Esc(url)} (the dashboard shows the run)"
        : settings.Memory
        ? "in-memory engine"
        : settings.DataDirectory is null
            ? "embedded engine (durable log in a fresh temp directory, deleted afterwards)"
            : $"embedded engine (data in {Esc(settings.DataDirectory)})";

    private static string Seconds(double ms) => (ms / 1000).ToString("0.00", CultureInfo.InvariantCulture) + " s";

    private static string Percent(long part, long whole) => (whole == 0 ? 0 : 100.0 * part / whole).ToString("0", CultureInfo.InvariantCulture) + "%";

    private static string Plural(int n, string one, string many) => n == 1 ? $"1 {one}" : $"{n.ToString(CultureInfo.InvariantCulture)} {many}";

    private static string Show(string? value) => value ?? "<missing>";

    private static string Join(IReadOnlyList<string> items) => items.Count switch
    {
        0 => "none",
        1 => items[0],
        _ => string.Join(", ", items.Take(items.Count - 1)) + " and " + items[^1],
    };

    private static string Esc(string text) => Markup.Escape(text);
}
