"""Store an executed notebook's pictures as JPEG instead of PNG, so the committed copy stays a few MB
(photos compress about five times better); every other output is kept as it is.

    python -m scripts.compact_notebook docs/Training_caption_generator.executed.ipynb
"""
from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

from PIL import Image

from caption_generator.files import write_text


def compact(path: str, quality: int = 85) -> None:
    notebook = json.loads(Path(path).read_text())
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                with Image.open(io.BytesIO(base64.b64decode(data.pop("image/png")))) as image:
                    jpeg = io.BytesIO()
                    image.convert("RGB").save(jpeg, "JPEG", quality=quality)
                data["image/jpeg"] = base64.b64encode(jpeg.getvalue()).decode()
                if "image/png" in output.get("metadata", {}):  # display options such as a width
                    output["metadata"]["image/jpeg"] = output["metadata"].pop("image/png")
    write_text(path, json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    compact(sys.argv[1])
