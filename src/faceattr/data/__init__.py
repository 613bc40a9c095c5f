"""faceattr.data"""
