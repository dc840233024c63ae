using Concord.Agents.Tools;
using Microsoft.Extensions.AI;

namespace Concord.Agents;

/// <summary>Plugs Concord tools into any <see cref="IChatClient"/>: a real model's client or a <see cref="Chat.SimulatedChatClient"/>.</summary>
public static class ConcordChatClientExtensions
{
    /// <summary>
    /// Wraps <paramref name="client"/> so every request offers <paramref name="tools"/> (and, unless
    /// <paramref name="instructions"/> is empty, <see cref="ConcordTools.Instructions"/>) and the tool calls the model makes are
    /// invoked and answered until it replies (<see cref="FunctionInvokingChatClient"/>, one call at a time).
    /// </summary>
    /// <param name="client">The model's client.</param>
    /// <param name="tools">Tools to offer, e.g. <see cref="ConcordTools.Create"/>.</param>
    /// <param name="instructions">Added to the request's instructions. <value>Default: <see cref="ConcordTools.Instructions"/>.</value></param>
    /// <param name="configure">Adjusts the function-invoking client (iteration limits, detailed errors).</param>
    public static IChatClient WithConcordTools(this IChatClient client, IEnumerable<AITool> tools, string? instructions = ConcordTools.Instructions,
        Action<FunctionInvokingChatClient>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(tools);
        var invoking = new FunctionInvokingChatClient(client) { AllowConcurrentInvocation = false };
        configure?.Invoke(invoking);
        // The tools go in outside the invoking client: it looks up the functions to call in the request's options.
        return new ToolsChatClient(invoking, [.. tools], instructions);
    }

    /// <summary>Adds <paramref name="tools"/> and <paramref name="instructions"/> to every request's options.</summary>
    private sealed class ToolsChatClient(IChatClient inner, IReadOnlyList<AITool> tools, string? instructions) : DelegatingChatClient(inner)
    {
        public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            base.GetResponseAsync(messages, With(options), cancellationToken);

        public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            base.GetStreamingResponseAsync(messages, With(options), cancellationToken);

        private ChatOptions With(ChatOptions? options)
        {
            var result = options?.Clone() ?? new ChatOptions();
            var list = result.Tools is null ? new List<AITool>() : [.. result.Tools];
            foreach (var tool in tools)
            {
                if (!list.Exists(t => t.Name == tool.Name)) list.Add(tool);
            }
            result.Tools = list;
            if (!string.IsNullOrEmpty(instructions))
                result.Instructions = string.IsNullOrEmpty(result.Instructions) ? instructions : result.Instructions + "\n\n" + instructions;
            return result;
        }
    }
}
