"""faceattr.evaluation"""
