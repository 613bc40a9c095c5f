"""faceattr.geometry"""
