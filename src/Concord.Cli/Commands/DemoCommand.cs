using System.CommandLine;
using Concord.Cli.Demos;

namespace Concord.Cli.Commands;

internal static class DemoCommand
{
    private const string Help = """
        Run a seed scenario: concurrent agents on shared state, naive vs safe.

        Scenarios:
          account   three agents (status, fees, compliance) update one account at once; a downstream
                    risk agent then scores it (default)
          counter   N agents (--agents, default 8) each add 1 to one counter M times (--increments, default 100)
          research  four specialists append findings to a shared research memory; a reviewer recommends
                    (naive: lost appends; patch: atomic append; crdt: OR-set)
          cache     four LLM agents (simulated model + Concord tools) cache paid FX lookups; an invoice agent
                    prices from the cache (naive: cache_put without versions; optimistic: concord_write with
                    expectedVersion; patch: add one entry)
          triage    two agents claim the same support tickets and reply (naive: poll + blind claim; optimistic:
                    version-checked claim; queue: each ticket leased by one agent, reply committed with the ack)
          budget    two agents check the remaining budget, then spend (write skew; naive and optimistic overspend,
                    serializable: a transaction over the spend range refuses the second commit)

        Modes:
          naive       read, think, write the whole value back with a blind put: the last writer silently
                      erases the others (the demo says exactly which updates were lost, and shows that
                      strict mode, the server default, refuses such writes)
          optimistic  compare-and-swap with retry (UpdateAsync): a stale write conflicts and is recomputed
          patch       atomic patch of only what the agent owns (its field; an increment)
          serializable, queue, crdt   see the scenarios above
          all         run every mode of the scenario and compare (default)

        Think times (0.2-2 s per LLM call) run in virtual time, so the demo takes a moment and a seed replays exactly.
        Runs on the embedded engine (durable log, fresh temp directory) unless --memory or --data is given.

        Watch it: --serve starts a Concord server on a free loopback port, prints the dashboard's address, runs the
        agents against it over HTTP with think times in real time (--pace 1; 0.5 = twice as fast), then keeps serving
        until Ctrl+C (--exit stops at the end). --serve URL uses a running server instead (start it with --no-strict
        to see naive writes get through; API key from CONCORD_API_KEY). --pace paces the account and counter
        scenarios; the agent scenarios run at full speed.

        Exit codes: 0 the demo ran (naive losing updates is the expected outcome), 1 failure, 2 bad arguments.
        """;

    internal static Command Create()
    {
        var scenario = new Argument<string>("scenario")
        {
            Description = "account, counter, research, cache, triage or budget",
            Arity = ArgumentArity.ZeroOrOne,
            DefaultValueFactory = _ => "account",
        };
        var mode = new Option<string>("--mode", "-m")
        {
            Description = "naive, optimistic, patch, serializable, queue, crdt or all (each scenario supports some)",
            HelpName = "MODE",
            DefaultValueFactory = _ => "all",
        };
        var agents = new Option<int?>("--agents", "-n") { Description = "Agents (counter; default 8). The account scenario has exactly 3.", HelpName = "N" };
        var increments = new Option<int?>("--increments") { Description = "Increments per agent (counter; default 100)", HelpName = "M" };
        var seed = new Option<int>("--seed", "-s")
        {
            Description = "Seed of start offsets and think times; the same seed replays the same run",
            DefaultValueFactory = _ => DemoSettings.DefaultSeed,
            HelpName = "S",
        };
        var json = new Option<bool>("--json") { Description = "Print one JSON document with the per-mode results instead of tables" };
        var data = new Option<string?>("--data") { Description = "Embedded engine data directory (default: a fresh temp directory, deleted afterwards)", HelpName = "DIR" };
        var memory = new Option<bool>("--memory") { Description = "Run on the in-memory engine (no durable log)" };
        var serve = new Option<string?>("--serve")
        {
            Description = "Run the agents against a Concord server over HTTP and watch them on its dashboard: an in-process server on a free port, or the one at URL",
            HelpName = "URL",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var pace = new Option<double?>("--pace") { Description = "With --serve: real seconds per virtual second of think time in the account and counter scenarios (default 1; 0 = as fast as possible)", HelpName = "X" };
        var exit = new Option<bool>("--exit") { Description = "With --serve: stop the in-process server when the demo ends instead of serving until Ctrl+C" };

        var command = new Command("demo", Help) { scenario, mode, agents, increments, seed, json, data, memory, serve, pace, exit };
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            var settings = DemoSettings.TryCreate(
                parseResult.GetValue(scenario), parseResult.GetValue(mode), parseResult.GetValue(agents), parseResult.GetValue(increments),
                parseResult.GetValue(seed), parseResult.GetValue(json), parseResult.GetValue(data), parseResult.GetValue(memory), out var problem);
            if (settings is null)
            {
                await error.WriteLineAsync($"concord demo: {problem}").ConfigureAwait(false);
                return 2;
            }
            var serving = parseResult.GetResult(serve) is { Implicit: false };
            if (!serving)
            {
                if (parseResult.GetValue(pace) is not null || parseResult.GetValue(exit))
                {
                    await error.WriteLineAsync("concord demo: --pace and --exit apply to --serve only.").ConfigureAwait(false);
                    return 2;
                }
                return await DemoRunner.RunAsync(settings, output, error, cancellationToken).ConfigureAwait(false);
            }
            var paceValue = parseResult.GetValue(pace) ?? 1.0;
            if (!(paceValue >= 0 && paceValue <= 100))
            {
                await error.WriteLineAsync("concord demo: --pace must be between 0 and 100.").ConfigureAwait(false);
                return 2;
            }
            if (parseResult.GetValue(data) is not null)
            {
                await error.WriteLineAsync("concord demo: --data does not apply to --serve (the in-process server keeps the demo in memory).").ConfigureAwait(false);
                return 2;
            }
            return await ServedDemo.RunAsync(settings with { Pace = paceValue }, parseResult.GetValue(serve), parseResult.GetValue(exit), output, error, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }
}
