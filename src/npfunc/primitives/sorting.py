"""(placeholder module: being written; see issue 4)"""
