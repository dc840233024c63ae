using System.CommandLine;
using Concord.Lab;

namespace Concord.Cli.Commands;

/// <summary><c>concord check</c>: a thin command-line wrapper over <see cref="CheckRunner"/>.</summary>
internal static class CheckCommand
{
    public static Command Create()
    {
        // Values are taken as plain strings and validated by CheckRunner, so every bad input exits with code 2
        // (System.CommandLine's own parse errors would exit with 1, which here means "anomaly found").
        var history = new Argument<string?>("history")
        {
            Description = "The history file (JSONL: an optional {\"meta\":…} line, then one Jepsen-style event per line).",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var model = new Option<string?>("--model")
        {
            Description = "register | cas-register | counter | set | queue | txn. Default: the meta line's model, else inferred from the operations.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var timeout = new Option<string?>("--timeout")
        {
            Description = "Seconds allowed for the check; undecided keys then make the verdict unknown (exit 3). Default: no limit.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var format = new Option<string?>("--format")
        {
            Description = "text | json. Default: text.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var export = new Option<string?>("--export")
        {
            Description = "knossos | elle | porcupine: also write the history in that format to --out.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var output = new Option<string?>("--out")
        {
            Description = "Where --export writes.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var realTime = new Option<bool>("--realtime")
        {
            Description = "txn only: also order transactions by real time (checks strict serializability).",
        };
        var processOrder = new Option<bool>("--process-order")
        {
            Description = "txn only: also order each process's transactions (checks strong session serializability).",
        };

        var command = new Command("check", "Check a recorded history (JSONL) for linearizability or isolation anomalies. Exit 0 valid, 1 anomaly, 2 bad input, 3 unknown (timeout).")
        {
            history, model, timeout, format, export, output, realTime, processOrder,
        };
        command.TreatUnmatchedTokensAsErrors = false;

        var options = new Option[] { model, timeout, format, export, output };
        command.SetAction((parseResult, cancellationToken) =>
        {
            var unmatched = parseResult.UnmatchedTokens.ToList();
            foreach (var option in options)
            {
                if (parseResult.GetResult(option) is { Implicit: false } given && given.Tokens.Count == 0)
                {
                    unmatched.Add($"{option.Name} (needs a value)");
                }
            }

            var request = new CheckRequest
            {
                Path = parseResult.GetValue(history),
                Model = parseResult.GetValue(model),
                Timeout = parseResult.GetValue(timeout),
                Format = parseResult.GetValue(format),
                Export = parseResult.GetValue(export),
                Out = parseResult.GetValue(output),
                RealTime = parseResult.GetValue(realTime),
                ProcessOrder = parseResult.GetValue(processOrder),
                UnmatchedTokens = unmatched,
            };
            return Task.FromResult(CheckRunner.Run(request, parseResult.InvocationConfiguration.Output, parseResult.InvocationConfiguration.Error, cancellationToken));
        });
        return command;
    }
}
