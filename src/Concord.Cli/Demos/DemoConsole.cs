using Spectre.Console;

namespace Concord.Cli.Demos;

/// <summary>Creates the Spectre console the demo renders to.</summary>
internal static class DemoConsole
{
    /// <summary>Width used when the output is not a terminal (CI logs, pipes, files).</summary>
    public const int RedirectedWidth = 110;

    /// <summary>
    /// A console writing to <paramref name="output"/>: ANSI styling and colours only on an interactive terminal and
    /// only without <c>NO_COLOR</c> (https://no-color.org); plain text, fixed width otherwise.
    /// </summary>
    public static IAnsiConsole Create(TextWriter output)
    {
        var terminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        var noColor = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal && !noColor ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        if (!terminal) console.Profile.Width = RedirectedWidth;
        return console;
    }
}
