"""faceattr.models"""
