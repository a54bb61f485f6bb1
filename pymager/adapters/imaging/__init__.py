"""The steps of the Pillow image pipeline, one module per step (as imgproxy's ``processing/``):

``decoding``     open with the accepted decoders only, under the decoding limits; decode fully (identify)
``orientation``  the EXIF orientation, and the mapping of upright coordinates to stored ones
``geometry``     fill, fit and pad as arithmetic: what the decoder must cover, one resize box, a canvas
``modes``        any decoded mode to a working mode that resamples (L, LA, RGB, RGBA, CMYK)
``colour``       the embedded ICC profile to sRGB, on the small result, with cached transforms
``output``       pad onto the canvas, convert to what the format stores, encode without metadata

``pymager.adapters.pillow.PillowProcessor`` runs them in that order.
"""
