using System.CommandLine;

namespace Concord.Cli.Commands;

internal static class CheckCommand
{
    public static Command Create()
    {
        var command = new Command("check", "Check a recorded history (JSONL) for linearizability or isolation anomalies.");
        return command;
    }
}
