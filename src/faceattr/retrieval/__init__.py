"""faceattr.retrieval"""
