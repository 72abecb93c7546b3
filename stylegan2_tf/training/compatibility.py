"""Checks that the networks a start of a run continues fit what this start asks for.

A run folder fixes its networks when it starts (networks.json and the
checkpoints); a later start with other size flags or another dataset must be
refused with the differences, not train the old networks or fail inside TF.
Settings are compared as NetworkSettings and named as the flags of
scripts/train.py (the official TF1 names, through presets.to_tf1_names).
"""

import dataclasses

from stylegan2_tf.networks.presets import DEFAULT_PRESET, to_tf1_names

# Settings compared, as flag names: the size flags of RunOptions first, then the
# settings only a preset (--cfg) asks for.
OVERRIDE_FLAGS = ("fmap_base", "fmap_max", "latent_size", "mapping_layers", "mixed_precision")
SETTINGS = (*OVERRIDE_FLAGS, "G architecture", "D architecture")


def flag_values(settings):
    """{flag: value} of a NetworkSettings, in the names and units of SETTINGS."""
    return {**to_tf1_names(**dataclasses.asdict(settings)),
            "mixed_precision": settings.num_fp16_res > 0,
            "G architecture": settings.g_architecture, "D architecture": settings.d_architecture}


def check_same_settings(saved, requested, options, source, whole_preset=True, held_in="the run"):
    """Raises ValueError naming each setting that `options` ask for and the networks lack.

    saved: the NetworkSettings of the networks `source` (a description, "the run ...")
    holds; requested: those `options` (RunOptions) resolve to. Compared: the size flags
    given explicitly (not None in `options`), and, with `whole_preset` and a --cfg other
    than "auto", every setting of SETTINGS. held_in: what holds the networks, in the message.
    """
    given = [flag for flag in OVERRIDE_FLAGS if getattr(options, flag) is not None]
    asked = SETTINGS if whole_preset and options.cfg != DEFAULT_PRESET else given
    old, new = flag_values(saved), flag_values(requested)
    differences = [f"{flag} is {old[flag]} in {held_in}, "
                   f"{f'--{flag}' if flag in given else f'--cfg={options.cfg}'} asks for {new[flag]}"
                   for flag in asked if old[flag] != new[flag]]
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
