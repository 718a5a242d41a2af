"""What every layer uses and no layer owns: the settings and the clock (`config`), the
contract's error table and its exception (`errors`), and the signing of tokens and media
URLs (`security`). It imports nothing of `im_api`, `handlers` or `models`, so the data layer
never leans on the HTTP package."""
