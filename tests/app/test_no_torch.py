"""The service imports and serves with torch made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"torch is blocked in this test: {name}")
            return None

    sys.meta_path.insert(0, NoTorch())
    from fastapi.testclient import TestClient
    from app.main import create_app
    from app.settings import Settings

    with TestClient(create_app(Settings(model_dir=sys.argv[1]))) as client:
        response = client.post("/v1/predict", json={"text": "a wonderful film"})
        assert response.status_code == 200, response.text
        trace = client.post("/v1/trace", json={"text": "a wonderful film"})
        assert trace.status_code == 200, trace.text
    assert not any(name == "torch" or name.startswith("torch.") for name in sys.modules)
    print("served without torch")
    """
)


def test_app_serves_without_torch(bundle_dir) -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(bundle_dir)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "served without torch" in result.stdout
