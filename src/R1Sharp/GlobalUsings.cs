global using TorchSharp.Utils;
