namespace R1Sharp.Templates;

/// What one render may spend. A chat template comes from a model folder, which may be hostile: it
/// must end with a template error, never by exhausting the stack, the memory or the time of the
/// process. Work is counted in steps (nodes, expressions, loop items, elements a filter touches),
/// sizes are checked before a string or list is built.
public sealed class RenderBudget
{
    public const long MaxSteps = 5_000_000;
    public const int MaxStringLength = 32 << 20;
    public const int MaxListLength = 1 << 20;
    public const int MaxCallDepth = 50;
    /// Nesting of values the renderer walks (tojson, repr, ==); a namespace may even contain itself.
    public const int MaxValueDepth = 100;

    private long _steps;
    private int _calls;

    public void Step(long count = 1)
    {
        _steps += count;
        if (_steps > MaxSteps) throw new JinjaException($"the template does too much work (over {MaxSteps:N0} steps)");
    }

    /// Throws unless a new string of `length` characters is allowed (`what` names the operation), and
    /// counts the work of building it.
    public void CheckString(long length, string what)
    {
        CheckLength(length, what);
        Step(length / 64);
    }

    /// Throws unless a text may grow to `length` characters.
    public static void CheckLength(long length, string what)
    {
        if (length > MaxStringLength) throw new JinjaException($"{what} would make a string of {length:N0} characters (at most {MaxStringLength:N0})");
    }

    public void CheckList(long count, string what)
    {
        if (count > MaxListLength) throw new JinjaException($"{what} would make a list of {count:N0} items (at most {MaxListLength:N0})");
        Step(count);
    }

    public IDisposable Call(string name)
    {
        if (++_calls > MaxCallDepth) throw new JinjaException($"macro calls nest deeper than {MaxCallDepth} (in '{name}'; endless recursion?)");
        return new Leave(this);
    }

    private sealed class Leave(RenderBudget budget) : IDisposable
    {
        public void Dispose() => budget._calls--;
    }

    /// A backstop under the explicit limits: stop before the thread's stack runs out.
    public static void EnsureStack()
    {
        if (!System.Runtime.CompilerServices.RuntimeHelpers.TryEnsureSufficientExecutionStack())
            throw new JinjaException("the template nests too deeply for the stack");
    }
}
