"""The simulated GRBL 1.1h marker: controller core, G-code interpreter, ``$`` settings, status, burns."""
