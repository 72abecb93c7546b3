"""Checks that a run's saved networks fit what this start of the run asks for.

A run folder fixes its networks when it starts (networks.json and the
checkpoints); a later start with other size flags or another dataset must be
refused with the differences, not train the old networks or fail inside TF.
"""

# Network settings a start can ask for: flag -> (value of built networks G, D; of a Preset).
SETTINGS = {
    "fmap_base": (lambda G, D: G.synthesis.channel_base // 2, lambda p: p.channel_base // 2),
    "fmap_max": (lambda G, D: G.synthesis.channel_max, lambda p: p.channel_max),
    "latent_size": (lambda G, D: G.z_dim, lambda p: p.z_dim),
    "mapping_layers": (lambda G, D: G.mapping.num_layers, lambda p: p.mapping_layers),
    "mixed_precision": (lambda G, D: G.synthesis.num_fp16_res > 0, lambda p: p.num_fp16_res > 0),
    "G architecture": (lambda G, D: G.synthesis.architecture, lambda p: p.g_architecture),
    "D architecture": (lambda G, D: D.architecture, lambda p: p.d_architecture),
}
OVERRIDE_FLAGS = ("fmap_base", "fmap_max", "latent_size", "mapping_layers", "mixed_precision")


def check_same_settings(G, D, preset, options, source):
    """Raises ValueError naming each setting that `options` asks for and G, D do not have.

    Compared: the size flags given explicitly (not None in `options`), and with a
    --cfg other than "auto" every network setting of that preset.
    """
    given = [flag for flag in OVERRIDE_FLAGS if getattr(options, flag) is not None]
    asked = list(SETTINGS) if options.cfg != "auto" else given
    differences = []
    for flag in asked:
        saved, requested = SETTINGS[flag]
        old, new = saved(G, D), requested(preset)
        if old != new:
            by = f"--{flag}" if flag in given else f"--cfg={options.cfg}"
            differences.append(f"{flag} is {old} in the run, {by} asks for {new}")
    if differences:
        raise ValueError(f"{source} holds networks with other settings: {'; '.join(differences)}. "
                         "Drop those flags to continue that run, or start a new run in another "
                         "--outdir")


def describe_images(resolution, channels, classes):
    """'32x32 RGB images with 10 classes' and the like."""
    colour = {1: "grayscale", 3: "RGB"}.get(channels, f"{channels}-channel")
    labels = f"with {classes} classes" if classes else "without labels"
    return f"{resolution}x{resolution} {colour} images {labels}"


def check_fits_dataset(G, metadata, data_dir, source):
    """Raises ValueError when G draws images of another size, colour or labelling than the dataset."""
    drawn = (G.img_resolution, G.img_channels, G.c_dim)
    held = (metadata["resolution"], metadata["channels"], metadata["label_size"])
    if drawn != held:
        raise ValueError(f"the dataset {data_dir} holds {describe_images(*held)}, but {source} "
                         f"has networks for {describe_images(*drawn)}; give a matching --data, "
                         "or start a new run in another --outdir")
