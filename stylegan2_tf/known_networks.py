"""NVIDIA's published StyleGAN2 networks: name, URL, format, resolution and, where cited, sha256.

Sources of the URLs (read at these commits):
- `tf1`: NVlabs/stylegan2 `pretrained_networks.py` (bf0fe0b). Its `config-a` networks are the
  original StyleGAN generator, not StyleGAN2, and are left out. NVIDIA's commit ca52625 ("Update
  S3 links") moved the same files from `http://d36zk2xti64re0.cloudfront.net/` to
  `https://nvlabs-fi-cdn.nvidia.com/`; URLs on the old host are recognised as the same networks.
- `ada-tf`: NVlabs/stylegan2-ada `README.md` (43eca51) and the `resume_specs` of its `train.py`
  (transfer-learning source networks).
- `ada-pytorch`: NVlabs/stylegan2-ada-pytorch `README.md` and `train.py` (d72cc7d).
- `stylegan3-stylegan2`: NVlabs/stylegan3 `README.md` (c233a91), StyleGAN2 networks on NGC in
  the stylegan2-ada-pytorch pickle format.

NVIDIA publishes no digests. `sha256` is filled only where a public source states it (the
entry's `sha256_source`); it is None everywhere else, and then a download is checked by size
only. Never add a digest that was not read from a citable source: a wrong one makes the
network impossible to download.

Names are short handles for `--network` and `load_network`: `tf1` networks by their file name
without `stylegan2-` (`ffhq-config-f`), the others with a prefix, `ada-tf-<file>`,
`ada-pytorch-<file>` and `ngc-<file without stylegan2->` (`ngc-ffhq-1024x1024`). Lookups ignore
case.
"""

import dataclasses
import urllib.parse

FORMATS = ("tf1", "ada-tf", "ada-pytorch", "stylegan3-stylegan2")

# Where the digests below come from.
_CLIBDEV = ("clibdev/stylegan2-pytorch README.md (1a63296), SHA-256 of its copies of NVIDIA's "
            "original TF pickles")
_CLIBDEV_AND_PINS = (_CLIBDEV + "; the same digest and size (381673535 bytes) are pinned "
                     "against NVIDIA's URL by independent public download scripts")


@dataclasses.dataclass(frozen=True)
class KnownNetwork:
    """One published network. `resolution` is the generator's output side (LSUN Car: 512 wide,
    images 512x384 inside); `sha256` is None unless `sha256_source` cites where it was read."""

    name: str
    url: str
    format: str
    resolution: int
    description: str
    sha256: str | None = None
    sha256_source: str | None = None


_TF1 = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"
_ADA_TF = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/"
_ADA_PT = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"

_DATASETS_TF1 = {"ffhq": ("FFHQ", 1024, "1024x1024"), "car": ("LSUN Car", 512, "512x384"),
                 "cat": ("LSUN Cat", 256, "256x256"), "church": ("LSUN Church", 256, "256x256"),
                 "horse": ("LSUN Horse", 256, "256x256")}
_CONFIG_F_SHA256 = {
    "ffhq": ("adf127ea7bb8a7788c8bdeda3c9937f7310b669b09ecf799ca53a631ff46948d", _CLIBDEV_AND_PINS),
    "car": ("e1618eee2b3ce87c4a3849442f7850ef12a478556bff035c8e09ee7e23b3794c", _CLIBDEV),
    "cat": ("08940fd616cfaf6bc7b0286b5d1a0b3f70febb26e136d64716c8d3f5e9bd3883", _CLIBDEV),
    "church": ("4090c5f83b44b83475c84864188aa39a0fb72694492302b7e6af36aad0d18104", _CLIBDEV),
    "horse": ("cbc73372c7d82d095913ca8b4b9f170560777175bd7c3b8a75dd55d70807f32b", _CLIBDEV),
}


def _tf1_networks():
    networks = []
    for dataset, configs in (("ffhq", "bcdef"), ("car", "bcdef"), ("cat", "f"), ("church", "f"),
                             ("horse", "f")):
        title, resolution, size = _DATASETS_TF1[dataset]
        for config in configs:
            name = f"{dataset}-config-{config}"
            digest, source = _CONFIG_F_SHA256[dataset] if config == "f" else (None, None)
            networks.append(KnownNetwork(
                name, f"{_TF1}stylegan2-{name}.pkl", "tf1", resolution,
                f"{title} {size}, paper config {config.upper()}", digest, source))
    for dataset in ("car", "ffhq"):  # the paper's Table 2: generator x discriminator architectures
        title, resolution, size = _DATASETS_TF1[dataset]
        for g in ("orig", "resnet", "skip"):
            for d in ("orig", "resnet", "skip"):
                name = f"{dataset}-config-e-G{g}-D{d}"
                networks.append(KnownNetwork(
                    name, f"{_TF1}table2/stylegan2-{name}.pkl", "tf1", resolution,
                    f"{title} {size}, config E, G {g}, D {d} (paper Table 2)"))
    return networks


_ADA_MAIN = (
    ("ffhq", 1024, "FFHQ 1024, trained with the original StyleGAN2"),
    ("metfaces", 1024, "MetFaces 1024, transfer learning from FFHQ with ADA"),
    ("afhqcat", 512, "AFHQ Cat 512, trained from scratch with ADA"),
    ("afhqdog", 512, "AFHQ Dog 512, trained from scratch with ADA"),
    ("afhqwild", 512, "AFHQ Wild 512, trained from scratch with ADA"),
    ("brecahad", 512, "BreCaHAD 512, trained from scratch with ADA"),
    ("cifar10", 32, "CIFAR-10 32, class-conditional"),
)
_ADA_TRANSFER = (  # train.py resume_specs: ffhq256, ffhq512, ffhq1024, celebahq256, lsundog256
    ("ffhq-res256-mirror-paper256-noaug", 256, "FFHQ 256, transfer-learning source"),
    ("ffhq-res512-mirror-stylegan2-noaug", 512, "FFHQ 512, transfer-learning source"),
    ("ffhq-res1024-mirror-stylegan2-noaug", 1024, "FFHQ 1024, transfer-learning source"),
    ("celebahq-res256-mirror-paper256-kimg100000-ada-target0.5", 256,
     "CelebA-HQ 256, transfer-learning source"),
    ("lsundog-res256-paper256-kimg100000-noaug", 256, "LSUN Dog 256, transfer-learning source"),
)


def _ada_networks(format, prefix, base):
    return ([KnownNetwork(f"{prefix}-{file}", f"{base}{file}.pkl", format, resolution, description)
             for file, resolution, description in _ADA_MAIN]
            + [KnownNetwork(f"{prefix}-{file}", f"{base}transfer-learning-source-nets/{file}.pkl",
                            format, resolution, description)
               for file, resolution, description in _ADA_TRANSFER])


_NGC_FILES = (
    ("ffhq-1024x1024", "FFHQ"), ("ffhq-512x512", "FFHQ"), ("ffhq-256x256", "FFHQ"),
    ("ffhqu-1024x1024", "FFHQ-U (unaligned)"), ("ffhqu-256x256", "FFHQ-U (unaligned)"),
    ("metfaces-1024x1024", "MetFaces"), ("metfacesu-1024x1024", "MetFaces-U (unaligned)"),
    ("afhqv2-512x512", "AFHQv2"), ("afhqcat-512x512", "AFHQ Cat"), ("afhqdog-512x512", "AFHQ Dog"),
    ("afhqwild-512x512", "AFHQ Wild"), ("brecahad-512x512", "BreCaHAD"),
    ("cifar10-32x32", "CIFAR-10"), ("celebahq-256x256", "CelebA-HQ"),
    ("lsundog-256x256", "LSUN Dog"),
)


def _ngc_networks():
    return [KnownNetwork(f"ngc-{file}", f"{_NGC}stylegan2-{file}.pkl", "stylegan3-stylegan2",
                         int(file.rsplit("x", 1)[1]),
                         f"{title} {file.rsplit('-', 1)[1]}{', class-conditional' if 'cifar' in file else ''}")
            for file, title in _NGC_FILES]


KNOWN_NETWORKS = tuple(_tf1_networks() + _ada_networks("ada-tf", "ada-tf", _ADA_TF)
                       + _ada_networks("ada-pytorch", "ada-pytorch", _ADA_PT) + _ngc_networks())

_BY_NAME = {network.name.lower(): network for network in KNOWN_NETWORKS}
_BY_URL = {network.url: network for network in KNOWN_NETWORKS}
# The same files under another address (see the module docstring).
_URL_ALIASES = (("http://d36zk2xti64re0.cloudfront.net/", "https://nvlabs-fi-cdn.nvidia.com/"),
                ("https://d36zk2xti64re0.cloudfront.net/", "https://nvlabs-fi-cdn.nvidia.com/"),
                ("http://nvlabs-fi-cdn.nvidia.com/", "https://nvlabs-fi-cdn.nvidia.com/"),
                ("http://api.ngc.nvidia.com/", "https://api.ngc.nvidia.com/"))


def known_network(url_or_name):
    """The KnownNetwork for a name (`ffhq-config-f`, any case) or one of NVIDIA's URLs, else None.

    URLs match exactly, after stripping blanks, ignoring the case of scheme and host, and
    mapping the old CloudFront host and plain http to the addresses above.
    """
    if not isinstance(url_or_name, str):
        return None
    text = url_or_name.strip()
    by_name = _BY_NAME.get(text.lower())
    if by_name is not None:
        return by_name
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    url = urllib.parse.urlunsplit(parts._replace(scheme=parts.scheme.lower(),
                                                 netloc=parts.netloc.lower()))
    for old, new in _URL_ALIASES:
        if url.startswith(old):
            url = new + url[len(old):]
            break
    return _BY_URL.get(url)
