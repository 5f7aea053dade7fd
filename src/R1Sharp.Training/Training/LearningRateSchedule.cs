namespace R1Sharp.Training.Training;

/// Linear warmup to the peak, then cosine decay to min_lr_ratio x peak at the last step.
public static class LearningRateSchedule
{
    public static double At(int step, int totalSteps, double peak, int warmupSteps, double minRatio)
    {
        if (warmupSteps > 0 && step < warmupSteps) return peak * (step + 1) / warmupSteps;
        var decaySteps = Math.Max(1, totalSteps - warmupSteps - 1);
        var progress = Math.Clamp((double)(step - warmupSteps) / decaySteps, 0, 1);
        var cosine = 0.5 * (1 + Math.Cos(Math.PI * progress));
        return peak * (minRatio + (1 - minRatio) * cosine);
    }
}
