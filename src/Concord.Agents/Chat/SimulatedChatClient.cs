using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Concord.Agents.Chat;

/// <summary>Settings of a <see cref="SimulatedChatClient"/>.</summary>
public sealed record SimulatedChatClientOptions
{
    /// <summary>Clock the latency is waited on (a virtual one makes it free). <value>Default: <see cref="TimeProvider.System"/>.</value></summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Seed of the latency draws. <value>Default: 0.</value></summary>
    public int Seed { get; init; }

    /// <summary>Shortest simulated response time. <value>Default: 200 ms.</value></summary>
    public TimeSpan MinLatency { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest simulated response time. <value>Default: 2 s.</value></summary>
    public TimeSpan MaxLatency { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Model id reported in responses and metadata. <value>Default: <c>concord-simulated</c>.</value></summary>
    public string ModelId { get; init; } = "concord-simulated";

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(TimeProvider);
        if (MinLatency < TimeSpan.Zero || MaxLatency < MinLatency) throw new ArgumentException("Latencies must satisfy 0 ≤ MinLatency ≤ MaxLatency");
    }
}

/// <summary>
/// A deterministic stand-in for a model: each call waits a seeded latency (0.2–2 s by default) on the injected clock, then
/// answers what its <see cref="SimulatedScript"/> decides from the conversation so far: tool calls (which a
/// <see cref="FunctionInvokingChatClient"/> invokes, feeding the results back) or a final text. For tests and demos where no
/// model is reachable; swap in a real <see cref="IChatClient"/> without changing the agent.
/// </summary>
/// <remarks>
/// Deterministic: the n-th call of a client waits the n-th latency of its seed, and call ids are derived from the
/// conversation, so the same seed, script and inputs give the same responses. Thread-safe.
/// </remarks>
public sealed class SimulatedChatClient : IChatClient
{
    private readonly SimulatedScript _script;
    private readonly SimulatedChatClientOptions _options;
    private readonly Random _random;
    private readonly Lock _gate = new();
    private int _calls;
    private TimeSpan _latency;

    /// <summary>Creates a client that follows <paramref name="script"/>.</summary>
    public SimulatedChatClient(SimulatedScript script, SimulatedChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(script);
        _options = options ?? new SimulatedChatClientOptions();
        _options.Validate();
        _script = script;
        _random = new Random(_options.Seed);
        Metadata = new ChatClientMetadata("concord-simulated", null, _options.ModelId);
    }

    /// <summary>Describes the client.</summary>
    public ChatClientMetadata Metadata { get; }

    /// <summary>Calls answered so far.</summary>
    public int Calls
    {
        get
        {
            lock (_gate) return _calls;
        }
    }

    /// <summary>Simulated time spent answering, over all calls.</summary>
    public TimeSpan TotalLatency
    {
        get
        {
            lock (_gate) return _latency;
        }
    }

    /// <summary>The latency the next call will wait (does not consume it).</summary>
    internal TimeSpan DrawLatency()
    {
        var span = (_options.MaxLatency - _options.MinLatency).TotalMilliseconds;
        // Whole milliseconds: virtual timers fire at millisecond resolution.
        return _options.MinLatency + TimeSpan.FromMilliseconds(Math.Round(_random.NextDouble() * span));
    }

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var history = messages.ToList();
        TimeSpan latency;
        int call;
        lock (_gate)
        {
            latency = DrawLatency();
            call = ++_calls;
            _latency += latency;
        }
        if (latency > TimeSpan.Zero) await Task.Delay(latency, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        var turn = new SimulatedTurn(history, options, call, latency);
        var step = _script.Next(turn) ?? throw new InvalidOperationException("The simulated script returned no step");
        var contents = new List<AIContent>();
        if (step.Text is { Length: > 0 } text) contents.Add(new TextContent(text));
        for (var i = 0; i < step.ToolCalls.Count; i++)
        {
            var (name, arguments) = step.ToolCalls[i];
            contents.Add(new FunctionCallContent($"call_{turn.Step}_{i}", name, arguments));
        }
        var message = new ChatMessage(ChatRole.Assistant, contents) { MessageId = $"sim_{call}" };
        var inputChars = history.Sum(m => m.Text?.Length ?? 0);
        return new ChatResponse(message)
        {
            ModelId = _options.ModelId,
            ResponseId = $"sim_{call}",
            FinishReason = step.ToolCalls.Count > 0 ? ChatFinishReason.ToolCalls : ChatFinishReason.Stop,
            Usage = new UsageDetails { InputTokenCount = inputChars / 4, OutputTokenCount = Math.Max(1, (step.Text?.Length ?? 0) / 4 + step.ToolCalls.Count * 16) },
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return Metadata;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
    }
}

/// <summary>What a <see cref="SimulatedScript"/> sees when deciding the next step.</summary>
public sealed class SimulatedTurn
{
    internal SimulatedTurn(IReadOnlyList<ChatMessage> messages, ChatOptions? options, int call, TimeSpan latency)
    {
        Messages = messages;
        Options = options;
        Call = call;
        Latency = latency;
        Step = messages.Count(m => m.Role == ChatRole.Assistant);
        var results = new List<JsonElement>();
        foreach (var message in messages)
        {
            foreach (var content in message.Contents)
            {
                if (content is FunctionResultContent r) results.Add(AsJson(r.Result));
            }
        }
        ToolResults = results;
        // The results the model has not answered yet: those after the last assistant message.
        var last = new List<JsonElement>();
        for (var i = messages.Count - 1; i >= 0 && messages[i].Role != ChatRole.Assistant; i--)
        {
            foreach (var content in messages[i].Contents)
            {
                if (content is FunctionResultContent r) last.Insert(0, AsJson(r.Result));
            }
        }
        NewToolResults = last;
    }

    /// <summary>The conversation so far.</summary>
    public IReadOnlyList<ChatMessage> Messages { get; }

    /// <summary>The request's options (tools offered, instructions).</summary>
    public ChatOptions? Options { get; }

    /// <summary>How many assistant messages the conversation already has (0 on the first call of a conversation).</summary>
    public int Step { get; }

    /// <summary>This client's call number (1-based, over all conversations).</summary>
    public int Call { get; }

    /// <summary>The latency this call waited.</summary>
    public TimeSpan Latency { get; }

    /// <summary>The text of the last user message, or "".</summary>
    public string Prompt => Messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";

    /// <summary>Every tool result in the conversation, in order, as JSON.</summary>
    public IReadOnlyList<JsonElement> ToolResults { get; }

    /// <summary>The tool results since the model last spoke (the answers to its last tool calls).</summary>
    public IReadOnlyList<JsonElement> NewToolResults { get; }

    /// <summary>The last tool result, if any.</summary>
    public JsonElement? LastToolResult => NewToolResults.Count > 0 ? NewToolResults[^1] : null;

    /// <summary>True when the tool <paramref name="name"/> is offered in <see cref="Options"/>.</summary>
    public bool HasTool(string name) => Options?.Tools?.Any(t => t.Name == name) == true;

    private static JsonElement AsJson(object? result) => result switch
    {
        null => default,
        JsonElement e => e,
        string s => JsonSerializer.SerializeToElement(s),
        _ => JsonSerializer.SerializeToElement(result, result.GetType(), JsonDefaults.Web),
    };
}

/// <summary>One simulated answer: tool calls (invoked by the caller's function-invoking client) and/or text.</summary>
public sealed record SimulatedStep
{
    private SimulatedStep(string? text, IReadOnlyList<(string Name, IDictionary<string, object?> Arguments)> calls)
    {
        Text = text;
        ToolCalls = calls;
    }

    /// <summary>Text of the answer (may be null with tool calls).</summary>
    public string? Text { get; }

    /// <summary>Tool calls, in order.</summary>
    public IReadOnlyList<(string Name, IDictionary<string, object?> Arguments)> ToolCalls { get; }

    /// <summary>A final answer.</summary>
    public static SimulatedStep Reply(string text) => new(text, []);

    /// <summary>One tool call with arguments given as an object (serialized to JSON, like a model's arguments).</summary>
    public static SimulatedStep Call(string tool, object arguments) => new(null, [(tool, ToArguments(arguments))]);

    /// <summary>Several tool calls in one answer.</summary>
    public static SimulatedStep Calls(params (string Tool, object Arguments)[] calls) => new(null, [.. calls.Select(c => (c.Tool, ToArguments(c.Arguments)))]);

    private static IDictionary<string, object?> ToArguments(object arguments)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        if (arguments is IDictionary<string, object?> dictionary) return dictionary;
        // Round-trip through JSON: a model's arguments arrive as JSON values, so the tools see exactly what a model would send.
        var element = arguments is JsonElement e ? e : JsonSerializer.SerializeToElement(arguments, arguments.GetType(), JsonDefaults.Web);
        if (element.ValueKind != JsonValueKind.Object) throw new ArgumentException("Tool arguments must be a JSON object", nameof(arguments));
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject()) result[property.Name] = property.Value.Clone();
        return result;
    }
}
