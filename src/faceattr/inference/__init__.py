"""faceattr.inference"""
