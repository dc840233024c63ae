using System.CommandLine;

namespace Concord.Cli.Commands;

internal static class DemoCommand
{
    public static Command Create()
    {
        var command = new Command("demo", "Run a seed scenario: agents racing on shared state, naive vs safe.");
        return command;
    }
}
