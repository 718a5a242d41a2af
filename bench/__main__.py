import sys
import warnings

# Connexion imports Starlette's test client, which warns about httpx on every start.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from bench.run import main  # noqa: E402

sys.exit(main())
