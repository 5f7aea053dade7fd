using static TorchSharp.torch;

namespace R1Sharp.Models;

/// Sliding-window attention with sinks as masks and rolling-cache bookkeeping, all as tensor ops.
/// A query at position q sees a key at position k when k <= q and (k > q - window or k < sinks), where
/// `window` is the number of recent keys (the config's sliding_window minus the sinks).
public static class AttentionWindow
{
    /// Additive mask [B, 1, T, S] from query positions [B, T] and key positions [B, S] (invalid keys: `valid` false).
    public static Tensor Mask(Tensor queryPositions, Tensor keyPositions, int window, int sinks, Tensor? valid = null)
    {
        using var scope = NewDisposeScope();
        var q = queryPositions.unsqueeze(-1);                    // [B, T, 1]
        var k = keyPositions.unsqueeze(1);                       // [B, 1, S]
        var visible = (k <= q).logical_and((k > q - window).logical_or(k < sinks));
        if (valid is not null) visible = visible.logical_and(valid.unsqueeze(1));
        return zeros(visible.shape, device: q.device).masked_fill(visible.logical_not(), double.NegativeInfinity)
            .unsqueeze(1).MoveToOuterDisposeScope();
    }

    /// Ring slot of each position: sinks keep their own slot, later positions cycle through `window` slots.
    public static Tensor Slots(Tensor positions, int window, int sinks) =>
        where(positions < sinks, positions, sinks + (positions - sinks).remainder(window));

    /// Which position each ring slot holds for rows that have `lengths` [B] tokens: positions [B, C], valid [B, C].
    public static (Tensor Positions, Tensor Valid) RingContents(Tensor lengths, int window, int sinks)
    {
        using var scope = NewDisposeScope();
        var last = (lengths - 1).view(-1, 1);                                   // [B, 1]
        var slot = arange(sinks + window, device: lengths.device).view(1, -1);  // [1, C]
        var behind = last - slot;                                               // distance from the newest position
        var positions = where(slot < sinks, slot.expand_as(behind), last - behind.remainder(window));
        var valid = behind >= 0;
        return (positions.MoveToOuterDisposeScope(), valid.MoveToOuterDisposeScope());
    }

    /// New tokens [B, T] at `positions` (row b valid up to validLengths[b]) that a rolling cache keeps:
    /// the sinks and each row's last `window` tokens (earlier ones would be overwritten in the same write).
    public static RingWrite Writes(Tensor positions, Tensor lengths, Tensor validLengths, int window, int sinks)
    {
        using var scope = NewDisposeScope();
        var t = arange(positions.shape[1], device: positions.device).view(1, -1);
        var valid = t < validLengths.view(-1, 1);
        var end = (lengths + validLengths).view(-1, 1);
        var keep = valid.logical_and((positions < sinks).logical_or(positions >= end - window));
        var index = keep.nonzero();                                             // [N, 2]: row, token
        var rows = index.select(1, 0);
        var tokens = index.select(1, 1);
        var slots = Slots(positions, window, sinks)[rows, tokens];
        return new RingWrite(rows.MoveToOuterDisposeScope(), slots.MoveToOuterDisposeScope(), tokens.MoveToOuterDisposeScope());
    }
}
