"""Realistic capture and delivery degradations of aligned face crops, and random chains of them.

Every degradation takes a BGR uint8 crop, a severity in [0, 1] and a random generator,
and returns a new BGR uint8 crop of the same size; a larger severity never degrades
less (for the same random draws). Pixel measures (blur radius, noise level) are given
for a 224-px crop and scale with the crop's side. A chain applies a few of them in
the order a picture meets them: optics (occlusion, defocus, motion), exposure and
contrast, sensor noise, then resampling and compression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

REFERENCE_SIZE = 224

Degrade = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def _scale(image: np.ndarray) -> float:
    return image.shape[0] / REFERENCE_SIZE


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def disk_kernel(radius: float) -> np.ndarray:
    """A normalised pillbox of ``radius`` pixels with an anti-aliased rim (defocus blur's PSF)."""
    half = int(np.ceil(radius))
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    weights = np.clip(radius + 0.5 - np.hypot(xx, yy), 0.0, 1.0)
    return (weights / weights.sum()).astype(np.float32)


def line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised straight motion path of ``length`` pixels at ``angle_deg``."""
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    half = (length - 1) / 2
    kernel[centre, :] = np.clip(half + 0.5 - np.abs(np.arange(size) - centre), 0.0, 1.0)
    rotation = cv2.getRotationMatrix2D((float(centre), float(centre)), angle_deg, 1.0)
    rotated = cv2.warpAffine(kernel, rotation, (size, size), flags=cv2.INTER_LINEAR)
    return rotated / max(float(rotated.sum()), 1e-12)


def defocus_blur(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus blur: a pillbox of radius 0.5-10 px."""
    radius = (0.5 + 9.5 * severity) * _scale(image)
    return cv2.filter2D(image, -1, disk_kernel(radius), borderType=cv2.BORDER_REFLECT)


def motion_blur(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Camera or subject motion: a straight path of 1-30 px in a random direction."""
    length = (1.0 + 29.0 * severity) * _scale(image)
    kernel = line_kernel(max(length, 1.0), float(rng.uniform(0.0, 180.0)))
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def gaussian_noise(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Read noise: white Gaussian noise of σ 2-30 grey levels, partly shared by the channels."""
    sigma = 2.0 + 28.0 * severity
    shared = rng.standard_normal(image.shape[:2] + (1,))
    own = rng.standard_normal(image.shape)
    # Demosaicing correlates the channels' noise; half shared, half per channel keeps σ.
    noise = sigma * (np.sqrt(0.5) * shared + np.sqrt(0.5) * own)
    return _to_uint8(image.astype(np.float64) + noise)


def poisson_noise(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Shot noise of a sensor whose white collects 1000 down to 10 photons."""
    peak = 10.0 ** (3.0 - 2.0 * severity)
    photons = rng.poisson(image.astype(np.float64) / 255.0 * peak)
    return _to_uint8(photons / peak * 255.0)


def jpeg(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """JPEG at quality 90 down to 5."""
    return encode_jpeg(image, round(90 - 85 * severity))


def encode_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` through a JPEG encoder at ``quality`` and back."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("OpenCV could not decode the JPEG it had just encoded")
    return decoded


def video_compression(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A low-bitrate video frame: a 1-3× downscaled copy coded at JPEG quality 40-5, scaled back.

    Coding the smaller copy spreads each 8×8 block over more of the face, as a
    streaming encoder working at a lower resolution does.
    """
    h, w = image.shape[:2]
    factor = 1.0 + 2.0 * severity
    small = cv2.resize(image, (max(8, round(w / factor)), max(8, round(h / factor))), interpolation=cv2.INTER_AREA)
    coded = encode_jpeg(small, round(40 - 35 * severity))
    return cv2.resize(coded, (w, h), interpolation=cv2.INTER_LINEAR)


def downscale(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A face seen at lower resolution: downscaled 1.25-8× then upscaled back."""
    h, w = image.shape[:2]
    factor = 1.25 + 6.75 * severity
    small = cv2.resize(image, (max(4, round(w / factor)), max(4, round(h / factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _exposure(image: np.ndarray, gain: float) -> np.ndarray:
    # The gain applies to linear light, so it acts through an sRGB-like 2.2 gamma and clips at white.
    linear = (image.astype(np.float64) / 255.0) ** 2.2 * gain
    return _to_uint8(np.clip(linear, 0.0, 1.0) ** (1 / 2.2) * 255.0)


def underexposure(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Too little light: 0.5 to 5 stops under (linear gain 0.7 down to 0.03)."""
    return _exposure(image, 2.0 ** -(0.5 + 4.5 * severity))


def overexposure(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Too much light: 0.5 to 3 stops over, highlights clipped."""
    return _exposure(image, 2.0 ** (0.5 + 2.5 * severity))


def low_contrast(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Haze or flare: the image blended 10-85 % towards a light grey veil."""
    veil = rng.uniform(120.0, 220.0)
    amount = 0.1 + 0.75 * severity
    return _to_uint8(image.astype(np.float64) * (1.0 - amount) + veil * amount)


def occlusion(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A hand, mask or object over 4-35 % of the crop: a textured rectangle of random shape and place."""
    h, w = image.shape[:2]
    area = (0.04 + 0.31 * severity) * h * w
    aspect = float(np.exp(rng.uniform(-0.7, 0.7)))
    rh = int(min(h, max(2, round(np.sqrt(area / aspect)))))
    rw = int(min(w, max(2, round(np.sqrt(area * aspect)))))
    top = int(rng.integers(0, h - rh + 1))
    left = int(rng.integers(0, w - rw + 1))
    colour = rng.uniform(20.0, 235.0, size=3)
    texture = cv2.GaussianBlur(rng.standard_normal((rh, rw)), (0, 0), max(1.0, rw / 16)) * 12.0
    out = image.copy()
    out[top : top + rh, left : left + rw] = _to_uint8(colour + texture[..., None])
    return out


# The ArcFace framing puts the eyes 35.2 px apart in 112 px: 70.5 px in the 224-px reference crop.
REFERENCE_EYE_DISTANCE = 70.5
#: The smallest inter-eye distance ``low_resolution`` reaches, in pixels of the captured face.
MIN_EYE_DISTANCE = 16.0


def low_resolution(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A face captured small: eyes 70 px down to 16 px apart (geometric in severity), upscaled back.

    The small face is made by area averaging (a sensor's pixels integrate light) and
    brought back to the crop's size by bilinear interpolation, as the pipeline's
    alignment warp upscales a small face.
    """
    h, w = image.shape[:2]
    factor = native_scale(severity)
    small = cv2.resize(image, (max(4, round(w * factor)), max(4, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def native_scale(severity: float) -> float:
    """The scale (≤ 1) at which ``low_resolution`` of ``severity`` captures the face."""
    return float((MIN_EYE_DISTANCE / REFERENCE_EYE_DISTANCE) ** severity)


def h264(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """An H.264 intra frame (libx264 through PyAV) at QP 26 up to 51: blocking, ringing, smoothed skin."""
    import av

    h, w = image.shape[:2]
    even = cv2.resize(image, (w // 2 * 2, h // 2 * 2)) if (h % 2 or w % 2) else image
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = even.shape[1], even.shape[0]
    encoder.pix_fmt = "yuv420p"
    encoder.options = {"qp": str(round(26 + 25 * severity)), "preset": "veryfast", "tune": "zerolatency"}
    packets = encoder.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="bgr24"))
    packets += encoder.encode(None)
    decoder = av.CodecContext.create("h264", "r")
    frames = [frame for packet in packets for frame in decoder.decode(packet)]
    frames += decoder.decode(None)
    if not frames:
        raise RuntimeError("libx264 gave no frame back")
    out = frames[0].to_ndarray(format="bgr24")
    return out if out.shape == image.shape else cv2.resize(out, (w, h))


def low_light(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A dim scene: 1 to 6 stops less light, shot and read noise, then the camera's gain brightens it part way.

    The sensor collects at most 1,000 photons at white at full light; read noise is 3
    electrons. Automatic gain restores 70 % of the lost stops, amplifying the noise.
    """
    stops = 1.0 + 5.0 * severity
    peak = 1000.0 * 2.0**-stops
    linear = (image.astype(np.float64) / 255.0) ** 2.2
    electrons = rng.poisson(linear * peak) + rng.normal(0.0, 3.0, image.shape)
    gained = np.clip(electrons / peak * 2.0 ** (-0.3 * stops), 0.0, 1.0)
    return _to_uint8(gained ** (1 / 2.2) * 255.0)


def decode_corruption(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A damaged stream decoded anyway: 4-40 % of the crop as garbage macroblocks or a smeared bar.

    Blocks (16 px at 224) are either copied from elsewhere in the frame, flat grey-green
    (a lost slice) or noise; a bar repeats one row downwards (a decoder's smear after a
    lost packet), so the bottom part of the face is gone.
    """
    h, w = image.shape[:2]
    out = image.copy()
    share = 0.04 + 0.36 * severity
    if rng.random() < 0.5:
        rows = max(1, round(share * h))
        top = int(rng.integers(0, h - rows + 1))
        out[top : top + rows] = out[top : top + 1]
        return out
    block = max(4, round(16 * _scale(image)))
    cells = [(y, x) for y in range(0, h, block) for x in range(0, w, block)]
    count = max(1, round(share * len(cells)))
    for index in rng.choice(len(cells), size=count, replace=False):
        y, x = cells[int(index)]
        patch = out[y : y + block, x : x + block]
        kind = rng.integers(0, 3)
        if kind == 0:
            sy, sx = int(rng.integers(0, max(1, h - block))), int(rng.integers(0, max(1, w - block)))
            patch[...] = image[sy : sy + patch.shape[0], sx : sx + patch.shape[1]]
        elif kind == 1:
            patch[...] = np.array([60, 130, 60], np.uint8)
        else:
            patch[...] = rng.integers(0, 256, patch.shape, dtype=np.uint8)
    return out


#: Every degradation by name, in the order a chain applies them.
DEGRADATIONS: dict[str, Degrade] = {
    "occlusion": occlusion,
    "defocus_blur": defocus_blur,
    "motion_blur": motion_blur,
    "underexposure": underexposure,
    "overexposure": overexposure,
    "low_contrast": low_contrast,
    "low_light": low_light,
    "gaussian_noise": gaussian_noise,
    "poisson_noise": poisson_noise,
    "downscale": downscale,
    "low_resolution": low_resolution,
    "video_compression": video_compression,
    "h264": h264,
    "jpeg": jpeg,
    "decode_corruption": decode_corruption,
}
#: The degradations of the MS-SSIM training set, in their original order (``random_chain``'s default draws).
ORIGINAL = (
    "occlusion", "defocus_blur", "motion_blur", "underexposure", "overexposure", "low_contrast",
    "gaussian_noise", "poisson_noise", "downscale", "video_compression", "jpeg",
)
# Opposites and near-duplicates never share a chain.
_EXCLUSIVE = (
    {"underexposure", "overexposure"},
    {"gaussian_noise", "poisson_noise"},
    {"jpeg", "video_compression", "h264"},
    {"downscale", "low_resolution"},
    {"low_light", "underexposure", "overexposure"},
    {"low_light", "gaussian_noise", "poisson_noise"},
)

#: The camera degradations of recognition-utility training and evaluation, each with its
#: share of the chains' draws. The shares follow what each costs recognition, measured
#: with dlib on the held-out faces (mean utility lost at full strength): decode
#: corruption 0.55, occlusion 0.44, motion blur 0.39, low light 0.34, low contrast 0.27,
#: defocus 0.24, H.264 0.16, over/under-exposure 0.16, Gaussian noise 0.12, low
#: resolution 0.013 (dlib's 150 px chip is soft itself, so 16 px between the eyes costs
#: it little). A share is about five times the cost, at least 0.5, so that every
#: degradation is still seen. The order of the names is the held-out grid's order.
CAMERA: dict[str, float] = {
    "low_resolution": 0.5,
    "motion_blur": 2.0,
    "defocus_blur": 1.5,
    "low_light": 2.0,
    "h264": 1.0,
    "occlusion": 2.0,
    "decode_corruption": 2.5,
    "underexposure": 1.0,
    "overexposure": 1.0,
    "gaussian_noise": 0.5,
    "low_contrast": 1.5,
}


@dataclass(frozen=True)
class Step:
    """One degradation of a chain and its severity in [0, 1]."""

    name: str
    severity: float

    def __str__(self) -> str:
        return f"{self.name}:{self.severity:.2f}"


def random_chain(
    rng: np.random.Generator,
    max_steps: int = 3,
    min_severity: float = 0.05,
    mix: dict[str, float] | None = None,
) -> list[Step]:
    """1 to ``max_steps`` distinct, compatible degradations with uniform severities, in chain order.

    Args:
        rng: the random generator.
        max_steps: most degradations in one chain.
        min_severity: the lowest severity drawn.
        mix: degradation name → relative share of draws (e.g. ``CAMERA``); None draws
            the original eleven (every one before ``low_light`` was added) alike,
            so chains drawn before the camera degradations existed stay the same.
    """
    count = int(rng.integers(1, max_steps + 1))
    chosen: list[str] = []
    if mix is None:
        candidates = [str(n) for n in rng.permutation(ORIGINAL)]
    else:
        names = list(mix)
        shares = np.array([mix[n] for n in names], np.float64)
        candidates = [names[i] for i in rng.choice(len(names), size=len(names), replace=False, p=shares / shares.sum())]
    for name in candidates:
        if len(chosen) == count:
            break
        if not any(name in group and group & set(chosen) for group in _EXCLUSIVE):
            chosen.append(str(name))
    order = list(DEGRADATIONS)
    return [Step(name, float(rng.uniform(min_severity, 1.0))) for name in sorted(chosen, key=order.index)]


def apply_chain(image: np.ndarray, chain: list[Step], rng: np.random.Generator) -> np.ndarray:
    """``image`` through every step of ``chain`` in turn.

    Raises:
        ValueError: a step names an unknown degradation or a severity outside [0, 1].
    """
    out = image
    for step in chain:
        if step.name not in DEGRADATIONS:
            raise ValueError(f"unknown degradation '{step.name}'; known: {', '.join(DEGRADATIONS)}")
        if not 0.0 <= step.severity <= 1.0:
            raise ValueError(f"severity of {step.name} must lie in [0, 1], got {step.severity}")
        out = DEGRADATIONS[step.name](out, step.severity, rng)
    return out
