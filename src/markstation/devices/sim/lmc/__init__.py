"""The simulated LMC board: board (the model), backend (under pyusb), replay (captures), options."""
