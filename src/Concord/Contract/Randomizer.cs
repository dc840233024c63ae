namespace Concord;

/// <summary>Source of randomness for backoff jitter. Inject a seeded one to make retries reproducible.</summary>
public interface IRandomizer
{
    /// <summary>A uniformly distributed double in [0, 1).</summary>
    double NextDouble();
}

/// <summary>A seeded <see cref="IRandomizer"/>. Thread-safe.</summary>
public sealed class SeededRandomizer : IRandomizer
{
    private readonly Random _random;
    private readonly Lock _gate = new();

    /// <summary>Creates a randomizer with a fixed seed.</summary>
    public SeededRandomizer(int seed) => _random = new Random(seed);

    /// <inheritdoc />
    public double NextDouble()
    {
        lock (_gate) return _random.NextDouble();
    }
}
