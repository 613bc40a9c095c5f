"""faceattr.training"""
