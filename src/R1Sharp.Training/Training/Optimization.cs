using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Training.Training;

/// AdamW as the trainers use it: weight decay on matrices only (nanoGPT's configure_optimizers), and
/// gradients cleared to none before each step as PyTorch's zero_grad(set_to_none=True) does. A
/// parameter that gets no gradient in a step (an expert no token chose) is then left alone by AdamW
/// whether or not it had one before, so a resumed run updates exactly what an uninterrupted one does.
public static class Optimization
{
    public static AdamW AdamW(IReadOnlyList<Parameter> trained, double lr, double beta1, double beta2, double weightDecay)
    {
        var groups = new List<AdamW.ParamGroup>
        {
            new(trained.Where(p => p.dim() >= 2), lr: lr, beta1: beta1, beta2: beta2, weight_decay: weightDecay),
            new(trained.Where(p => p.dim() < 2), lr: lr, beta1: beta1, beta2: beta2, weight_decay: 0),
        };
        return optim.AdamW(groups, lr: lr, beta1: beta1, beta2: beta2);
    }

    public static void ClearGradients(IEnumerable<Parameter> parameters)
    {
        foreach (var p in parameters) p.grad = null;
    }
}
